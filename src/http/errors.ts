// One error shape on every route (CONTRACT section 4): HTTP status = code, body
// {"error": "<what went wrong, in words>", "code": <status>}. Errors are values with a
// status (STYLE rule 6): services throw these plain classes (no Elysia import), and the
// one onError in app.ts turns everything into the shape.

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

export class PayloadTooLargeError extends HttpError {
  constructor(limit: number) {
    super(413, `request body is larger than ${limit} bytes`);
  }
}

export class UnsupportedMediaTypeError extends HttpError {
  constructor(got: string | null) {
    super(415, `request body must be application/json, got ${got === null ? "no content type" : JSON.stringify(got)}`);
  }
}

/** The body did not arrive whole: the client hung up or was cut off by the idle timeout. */
export class RequestTimeoutError extends HttpError {
  constructor() {
    super(408, "request body not received completely (connection closed or too slow)");
  }
}

/** The body is JSON but breaks the schema; the message names the field. */
export class UnprocessableError extends HttpError {
  constructor(message: string) {
    super(422, message);
  }
}

/** Temporarily unable to accept or answer; the client should retry after `retryAfterSeconds`. */
export class UnavailableError extends HttpError {
  constructor(message: string, retryAfterSeconds: number) {
    super(503, message, { "retry-after": String(retryAfterSeconds) });
  }
}

export interface ErrorBody {
  error: string;
  code: number;
}

export function errorBody(status: number, message: string): ErrorBody {
  return { error: message, code: status };
}

export function errorResponse(status: number, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(errorBody(status, message)), {
    status,
    headers: { "content-type": "application/json", "x-content-type-options": "nosniff", ...headers },
  });
}
