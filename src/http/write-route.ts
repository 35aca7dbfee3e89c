// The write path's one owner: every route that changes state is declared with
// writeRoute(schema, handler), and createApp refuses to start when one is not
// (assertWriteRoutes). What the helper does for each write, in this order:
// 1. stamps the request's start (access log: `ms` = parse + queue + durable write, the
//    latency agents see);
// 2. asks the gate whether this client may write, before the body is read: a refused client
//    cannot make the service read and parse a megabyte first, and a bad body without a token
//    is a 401, not a 400;
// 3. reads the body with limits and checks it against `schema` (json-body.ts): problems under
//    `strict` keys are a 422, any other is stored as null and listed in `coerced`;
// 4. counts every body refused as invalid (400/413/415/422, isInvalidBody) where it is
//    refused, for /metrics;
// 5. calls `handler(body, coerced)`, through an Elysia handler that takes only `body` from
//    the context: taking the whole context makes every request build all of it (a third of
//    GET /meta/metrics' throughput, measured; access-log.ts). A handler declared with a third
//    parameter also gets the request (the guardian's audit line names the client); only its
//    route's Elysia handler takes `request` as well.
// ? Why the check is a parse hook and not a global one: a global parse hook makes Elysia
// compose every GET handler as an async function (a promise per request: +1-2 % CPU on
// GET /meta/metrics, measured), and a global beforeHandle runs after the body is read. So
// reads are checked by auth.ts's global beforeHandle, writes here, and assertWriteRoutes
// makes sure no write route is left without.
// Reads that may wait (on a disk, the risk engine) are declared with timedRead, for the same
// timing without each route stamping it.
import type { Static, TSchema } from "@sinclair/typebox";
import { markStart } from "./access-log";
import { type HttpError, isInvalidBody } from "./errors";
import {
  type BodyLimits,
  coercedPaths,
  DEFAULT_BODY_LIMITS,
  jsonBodyHooks,
  jsonObjectParser,
  overLimitRefusal,
  parsedBodySchema,
} from "./json-body";

/** What the write path needs from outside http/ (auth.ts's policy, /metrics' counter). */
export interface WriteGate {
  /** Refuses a write before its body is read: throws the HttpError to answer (401/403/429). */
  check(request: Request): void;
  /** Told of each body refused as invalid (400/413/415/422), once per refused request. */
  onInvalid(): void;
}

export interface WriteRouteOptions<R, D> {
  /** Top-level keys refused with 422 when they break the schema. Default: none (all coerced). */
  strict?: readonly string[];
  /** The route's answers for Elysia and OpenAPI (the 200 and the route's own errors). */
  response: R;
  /** OpenAPI text. */
  detail: D;
}

/** The parse hooks writeRoute made: a route whose parse hook is one of them is a write route. */
const writeParsers = new WeakSet<object>();

/**
 * Declares a write route: spread the result into `.post(path, ...)`. `handler` gets the
 * checked body, the paths stored as null (`coerced`), `overLimit` and, when it declares a
 * fourth parameter, the request; its answer is the 200's. `overLimit`: the poster's body
 * broke a size limit and `body` holds only its `strict` (safety) keys; the handler applies
 * them and answers with this refusal, saying so, or throws it to refuse the body whole.
 */
export type WriteRoute = <S extends TSchema, A, R, D>(
  schema: S,
  handler: (
    body: Static<S>,
    coerced: readonly string[],
    overLimit: HttpError | undefined,
    request: Request,
  ) => Promise<A>,
  options: WriteRouteOptions<R, D>,
) => [
  (context: { body: Static<S>; request: Request }) => Promise<A>,
  {
    parse: ReturnType<typeof jsonBodyHooks<Record<string, unknown>>>;
    body: S;
    response: R;
    detail: D;
  },
];

/** The writeRoute of an app: every write it declares passes `gate`, and its body `limits`. */
export function writeRoutes(gate: WriteGate, limits: BodyLimits = DEFAULT_BODY_LIMITS): WriteRoute {
  return (schema, handler, { strict = [], response, detail }) => {
    const parse = jsonObjectParser(schema, strict, limits);
    const hook = async ({ request }: { request: Request }) => {
      markStart(request);
      gate.check(request);
      try {
        return await parse(request);
      } catch (err) {
        if (isInvalidBody(err)) gate.onInvalid();
        throw err;
      }
    };
    writeParsers.add(hook);
    const run = async (body: Static<typeof schema>, request: Request | undefined) => {
      const overLimit = overLimitRefusal(body as object);
      if (overLimit !== undefined) gate.onInvalid();
      try {
        return await handler(body, coercedPaths(body as object), overLimit, request as Request);
      } catch (err) {
        // ? The service may refuse a body the schema let through (meta: a posted cache_timestamp).
        if (isInvalidBody(err)) gate.onInvalid();
        throw err;
      }
    };
    // ? Two functions, not one taking `request` always: Elysia reads the parameter list to
    // decide what each request's context holds, and the telemetry routes need only `body`.
    const answer =
      handler.length >= 4
        ? ({ body, request }: { body: Static<typeof schema>; request: Request }) => run(body, request)
        : ({ body }: { body: Static<typeof schema> }) => run(body, undefined);
    return [answer, { parse: jsonBodyHooks(hook), body: parsedBodySchema(schema), response, detail }];
  };
}

/** The part of an Elysia route this looks at. */
interface RouteHooks {
  method: string;
  path: string;
  hooks?: { parse?: unknown };
}

/** Whether `route` was declared with writeRoute. */
export function isWriteRoute(route: RouteHooks): boolean {
  const parse = route.hooks?.parse;
  return Array.isArray(parse) && parse.some((h) => writeParsers.has((h as { fn?: object }).fn ?? h));
}

/**
 * Throws naming every route that changes state (any method but GET, HEAD and OPTIONS) and
 * was not declared with writeRoute: such a route would take writes from anyone, unlimited,
 * and uncounted. createApp calls it once, so the service does not start with one.
 */
export function assertWriteRoutes(routes: readonly RouteHooks[]): void {
  const bypassing = routes
    .filter((r) => r.method !== "GET" && r.method !== "HEAD" && r.method !== "OPTIONS" && !isWriteRoute(r))
    .map((r) => `${r.method} ${r.path}`);
  if (bypassing.length > 0) {
    throw new Error(`write routes must be declared with writeRoute (http/write-route.ts): ${bypassing.join(", ")}`);
  }
}

/**
 * A read whose duration the access log and /metrics carry (it may wait on a disk or the risk
 * engine). Other reads are not timed: answered from memory, their time says nothing.
 */
export function timedRead<A>(handler: () => A): (context: { request: Request }) => A {
  return ({ request }) => {
    markStart(request);
    return handler();
  };
}
