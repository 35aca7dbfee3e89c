// Small helpers every route module uses to answer: the error schema for OpenAPI (errors.ts
// owns it) and a pre-serialised JSON response (skips a second JSON.stringify on the hot read
// paths).
import { JSON_HEADERS } from "./errors";

export { ErrorResponse } from "./errors";

/** A 200 whose body is already JSON text (or its UTF-8 bytes, which the response does not modify). */
export function jsonResponse(json: string | Uint8Array, headers?: Record<string, string>): Response {
  return new Response(json, { headers: headers ? { ...JSON_HEADERS, ...headers } : JSON_HEADERS });
}
