// One error shape on every route (CONTRACT section 4): HTTP status = code, body
// {"error": "<what went wrong, in words>", "code": <status>}. Errors are values with a
// status (STYLE rule 6): services throw these plain classes (no Elysia import), and the
// one onError in app.ts turns everything into the shape. This file owns all of it: the
// classes, the schema, the headers, and the words of a schema problem.
import { Type as t } from "@sinclair/typebox";

/** The error shape, for validation, types and OpenAPI at once. */
export const ErrorResponse = t.Object(
  {
    error: t.String({ description: "what went wrong, in words" }),
    code: t.Integer({ description: "the HTTP status, repeated" }),
  },
  { description: "The one error shape of every route (CONTRACT section 4)" },
);
export type ErrorResponse = typeof ErrorResponse.static;

// ? nosniff: a browser must never guess that a document holding agent strings is HTML.
export const JSON_HEADERS = { "content-type": "application/json", "x-content-type-options": "nosniff" } as const;

/** The realm browsers show in their credentials prompt and clients see in 401s. */
const REALM = "neolight-dashboard";

/** An error whose message is safe to show the client, with the status to answer. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Extra response headers, e.g. Retry-After. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends HttpError {
  constructor(message: string) {
    super(400, message);
  }
}

/** 401: no credentials. The header tells clients (and browsers, for reads) what to send. */
export class UnauthorizedError extends HttpError {
  constructor(message: string, scheme: "Bearer" | "Basic") {
    super(401, message, {
      "www-authenticate": scheme === "Basic" ? `Basic realm="${REALM}", charset="UTF-8"` : `Bearer realm="${REALM}"`,
    });
  }
}

export class ForbiddenError extends HttpError {
  constructor(message: string) {
    super(403, message);
  }
}

/**
 * 421: the Host header names no host this service answers as (host-check.ts: a DNS-rebinding
 * guard). RFC 9110 15.5.20: this server is not the one for that name. The answer says which
 * option allows a name that is meant.
 */
export class MisdirectedRequestError extends HttpError {
  constructor(name: string) {
    super(
      421,
      `host name ${JSON.stringify(name)} is not one this service answers writes or the page for (DNS rebinding guard); if it is meant, add it to NEOLIGHT_ALLOWED_HOSTS (comma-separated)`,
    );
  }
}

export class NotFoundError extends HttpError {
  constructor(method: string, path: string) {
    super(404, `no route for ${method} ${path}`);
  }
}

/**
 * A known path with another method: the answer names what it does answer (RFC 9110
 * 15.5.6), so `curl -X DELETE /meta/metrics` is told it is the method, not the path.
 */
export class MethodNotAllowedError extends HttpError {
  constructor(method: string, path: string, allowed: readonly string[]) {
    super(405, `${method} is not allowed on ${path}; it answers ${allowed.join(", ")}`, { allow: allowed.join(", ") });
  }
}

/** The body did not arrive whole: the client hung up or was cut off by the idle timeout. */
export class RequestTimeoutError extends HttpError {
  constructor() {
    super(408, "request body not received completely (connection closed or too slow)");
  }
}

export class PayloadTooLargeError extends HttpError {
  /** `how`: what raises the limit (the option's name), or what follows from it. */
  constructor(limit: number, how?: string) {
    super(
      413,
      `request body is larger than ${limit} bytes${how === undefined ? "" : ` (the body size limit: ${how})`}`,
    );
  }
}

export class UnsupportedMediaTypeError extends HttpError {
  constructor(got: string | null) {
    super(415, `request body must be application/json, got ${got === null ? "no content type" : JSON.stringify(got)}`);
  }
}

/** The body is JSON but breaks the schema; the message names the field. */
export class UnprocessableError extends HttpError {
  constructor(message: string) {
    super(422, message);
  }
}

/** Too many writes from one address; `retryAfterSeconds` is when its bucket has a token again. */
export class TooManyRequestsError extends HttpError {
  constructor(retryAfterSeconds: number, rate: number) {
    super(429, `too many writes from this address (limit ${rate}/s); retry after ${retryAfterSeconds} s`, {
      "retry-after": String(retryAfterSeconds),
    });
  }
}

/** 429 for a per-client limit other than the write rate: `message` names the limit. */
export class ClientLimitError extends HttpError {
  constructor(message: string, retryAfterSeconds: number) {
    super(429, message, { "retry-after": String(retryAfterSeconds) });
  }
}

/**
 * Temporarily unable to accept or answer; the client should retry after `retryAfterSeconds`,
 * a named constant where it is thrown (with the reason for that wait).
 */
export class UnavailableError extends HttpError {
  constructor(message: string, retryAfterSeconds: number) {
    super(503, message, { "retry-after": String(retryAfterSeconds) });
  }
}

/**
 * Whether `error` refuses a request body as invalid: not JSON, too large, not labelled as
 * JSON, or breaking its schema (CONTRACT section 4). What /metrics counts as reason "invalid".
 */
export function isInvalidBody(error: unknown): error is HttpError {
  return (
    error instanceof BadRequestError ||
    error instanceof PayloadTooLargeError ||
    error instanceof UnsupportedMediaTypeError ||
    error instanceof UnprocessableError
  );
}

export function errorBody(status: number, message: string): ErrorResponse {
  return { error: message, code: status };
}

export function errorResponse(status: number, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(errorBody(status, message)), { status, headers: { ...JSON_HEADERS, ...headers } });
}

/** How many schema problems one 422 lists; the first few are what a poster needs. */
const MAX_LISTED_PROBLEMS = 3;

/** One schema problem, as TypeBox (and Elysia's ValidationError.all) report it. */
export interface Problem {
  /** JSON pointer with its leading slash: "/guardian/is_paused"; "" for the whole body. */
  path: string;
  message: string;
}

/**
 * "guardian/is_paused: Expected boolean; ..." for the first MAX_LISTED_PROBLEMS problems:
 * the words of every 422 and of a corrupt state file. A path in `nonFinite` held NaN or
 * Infinity (read as null), which the schema's "Expected number" would not explain.
 */
export function describeProblems(problems: Iterable<Problem>, nonFinite: ReadonlySet<string> = new Set()): string {
  const listed: string[] = [];
  for (const e of problems) {
    const path = e.path.slice(1);
    const message = nonFinite.has(path) ? "Expected a finite number (not NaN, Infinity or out of range)" : e.message;
    listed.push(`${path || "body"}: ${message}`);
    if (listed.length === MAX_LISTED_PROBLEMS) break;
  }
  return listed.join("; ");
}
