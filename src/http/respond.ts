// Small helpers every route module uses to answer: the error schema for OpenAPI and a
// pre-serialised JSON response (skips a second JSON.stringify on the hot read paths).
import { Type as t } from "@sinclair/typebox";

export const ErrorResponse = t.Object(
  {
    error: t.String({ description: "what went wrong, in words" }),
    code: t.Integer({ description: "the HTTP status, repeated" }),
  },
  { description: "The one error shape of every route (CONTRACT section 4)" },
);

// ? nosniff: a browser must never guess that a document holding agent strings is HTML.
const JSON_HEADERS = { "content-type": "application/json", "x-content-type-options": "nosniff" } as const;

/** A 200 whose body is already JSON text (or its UTF-8 bytes, which the response does not modify). */
export function jsonResponse(json: string | Uint8Array, headers?: Record<string, string>): Response {
  return new Response(json, { headers: headers ? { ...JSON_HEADERS, ...headers } : JSON_HEADERS });
}
