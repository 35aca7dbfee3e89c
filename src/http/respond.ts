// Small helpers every route module uses to answer: the error schema for OpenAPI (errors.ts
// owns it) and a pre-serialised JSON response (skips a second JSON.stringify on the hot read
// paths).
import { JSON_HEADERS } from "./errors";

export { ErrorResponse } from "./errors";

/**
 * A 200 whose body is already JSON text, its UTF-8 bytes (copied into the response), or a
 * Blob of them (shared, not copied: for large bodies sent more than once).
 */
export function jsonResponse(json: string | Uint8Array | Blob, headers?: Record<string, string>): Response {
  return new Response(json, { headers: headers ? { ...JSON_HEADERS, ...headers } : JSON_HEADERS });
}
