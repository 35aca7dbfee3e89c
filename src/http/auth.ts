// Who may write, and who may read: the access policy and the Elysia hooks that apply it.
// The execution router trades on what this service says, so a stranger who can write to
// it is a trading incident (issue 5). Rules, by method and path, never by route name, so
// routes other features add are covered without listing them here:
// - A write is every method but GET, HEAD and OPTIONS. With NEOLIGHT_DASHBOARD_TOKEN set it
//   needs `Authorization: Bearer <token>` (401 without, 403 wrong), from any address. With
//   no token it is accepted from this host only (loopback or the host's own interface
//   addresses: NeoLight's agents run on the host and send no token); anything else is 403.
//   Then the per-address rate limit applies (429). Before all that, a write whose Host header
//   names no host this service answers as gets 421 (host-check.ts: DNS rebinding), and so
//   does the page (checkPage); plain reads of the JSON endpoints are never checked.
// - A read (GET, HEAD) needs the read token only when NEOLIGHT_DASHBOARD_READ_TOKEN is set,
//   only from clients on other hosts, and never on /health (probes). This host stays open
//   because the execution router and the governor on it cannot send a token, and a router
//   that got a 401 instead of the document could read "not paused".
// The client address is the TCP peer. X-Forwarded-For is never trusted: behind a reverse
// proxy on this host every client looks like loopback, so put the token on the proxy.
//
// Cost: with a read token, one global beforeHandle that returns at once for a GET from this
// host; without one, none. Writes are checked by the write path before it reads their body
// (write-route.ts), and createApp refuses a write route that is not declared there.

import { networkInterfaces } from "node:os";
import type { Server } from "bun";
import { Elysia } from "elysia";
import { clip, type Logger } from "../log/logger";
import {
  ForbiddenError,
  type HttpError,
  MisdirectedRequestError,
  TooManyRequestsError,
  UnauthorizedError,
} from "./errors";
import { createHostCheck, type HostCheck, hostName } from "./host-check";
import type { AccessStats } from "./model";
import { createRateLimiter, type RateLimiter } from "./rate-limit";

/**
 * Reads that never need a token: liveness and readiness probes (a load balancer's health
 * check, issue 12) must work without credentials, and say nothing of the document.
 */
export const OPEN_READ_PATHS: ReadonlySet<string> = new Set(["/health", "/health/ready"]);

/** Where a request came from: the TCP peer address, or null when unknown. */
export type ClientAddress = (request: Request, server: Server<unknown> | null) => string | null;

/** The TCP peer as Bun reports it. In app.handle (tests) there is no server: null. */
export const peerAddress: ClientAddress = (request, server) => server?.requestIP(request)?.address ?? null;

/** 127.0.0.0/8, ::1 and IPv4-mapped 127.x (what a dual-stack listener reports). Null is not. */
export function isLoopback(address: string | null): boolean {
  if (address === null) return false;
  if (address === "::1" || address === "0:0:0:0:0:0:0:1") return true;
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return v4.startsWith("127.") && /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/**
 * The client an address counts as for sampling log lines: all of loopback is one (NeoLight's
 * agents and a local flood alike), null (no socket) is "unknown".
 */
export function clientKey(address: string | null): string {
  return address === null ? "unknown" : isLoopback(address) ? "loopback" : address;
}

/**
 * fe80::/10 and 169.254.0.0/16 (IPv4-mapped too). Such an address is unique only on its own
 * link: a client on another link (a VM bridge, a container veth) can hold the same fe80::
 * address as one of this host's interfaces, so it never proves "this host" (issue 15).
 */
export function isLinkLocal(address: string): boolean {
  const a = address.toLowerCase();
  const v4 = a.startsWith("::ffff:") ? a.slice(7) : a;
  if (/^169\.254\.\d{1,3}\.\d{1,3}$/.test(v4)) return true;
  // fe80::/10 is fe80 to febf in the first group.
  return /^fe[89ab][0-9a-f]:/.test(a);
}

/** How often the host's own interface addresses are re-read (DHCP, new interfaces). */
const LOCAL_ADDRESSES_TTL_MS = 60_000;

/**
 * Whether `address` is this host: loopback, or one of the host's own interface addresses
 * (an agent on this host that connects to the host's name or LAN address arrives from it),
 * never a link-local one (isLinkLocal says why).
 * The interface list is cached for LOCAL_ADDRESSES_TTL_MS and only read for addresses that
 * are not loopback.
 */
export function localAddressCheck(
  list: () => string[] = () =>
    Object.values(networkInterfaces())
      .flat()
      .map((i) => i?.address ?? "")
      .filter((a) => a !== ""),
): (address: string | null) => boolean {
  let cached: Set<string> | null = null;
  let readAt = 0;
  return (address) => {
    if (address === null) return false;
    if (isLoopback(address)) return true;
    if (isLinkLocal(address)) return false;
    if (cached === null || Date.now() - readAt > LOCAL_ADDRESSES_TTL_MS) {
      cached = new Set(list());
      readAt = Date.now();
    }
    return cached.has(address.startsWith("::ffff:") ? address.slice(7) : address);
  };
}

export interface AccessPolicy {
  /**
   * Decides a write (any method but GET/HEAD/OPTIONS). Throws UnauthorizedError,
   * ForbiddenError or TooManyRequestsError; returns when the write may proceed (and has
   * then taken one rate-limit token). Synchronous: it never waits.
   */
  checkWrite(request: Request, address: string | null, path: string): void;
  /**
   * Decides whether the page (GET / for a browser) may be answered under the request's Host:
   * throws MisdirectedRequestError (421) for a name that is not this service's (HostCheck).
   */
  checkPage(request: Request, address: string | null, path: string): void;
  /** Decides a GET/HEAD. Throws UnauthorizedError or ForbiddenError; a no-op without a read token. */
  checkRead(request: Request, address: string | null, path: string): void;
  /** Whether reads need checking at all (a read token is configured). */
  readonly guardsReads: boolean;
  stats(): AccessStats;
}

export interface AccessPolicyOptions {
  /** Write token; null: writes from this host only (isLocal). */
  token: string | null;
  /** Read token; null: reads open. */
  readToken: string | null;
  /** Writes per second per address (0: off) and burst. */
  writeRate: number;
  writeBurst: number;
  log: Logger;
  limiter?: RateLimiter;
  /** Whether an address is this host. Default: loopback or one of its interface addresses. */
  isLocal?: (address: string | null) => boolean;
  /** The host names writes and the page answer to. Default: the implied ones only (createHostCheck). */
  hosts?: HostCheck;
  /** Told of every refused write (401/403/421: unauthorised, 429: rate_limited), for /metrics. */
  onWriteRefused?(reason: "unauthorised" | "rate_limited"): void;
}

/**
 * SHA-256 first, so both sides have the same length and the comparison leaks neither.
 * ? Bun's native hasher and the global `crypto.timingSafeEqual`, not node:crypto's: that
 * module takes 8-17 ms to load in the compiled binary, all of it on the path to the first
 * 200 (issue 14), and these two were all it was loaded for.
 */
function digest(value: string): Buffer {
  return new Bun.CryptoHasher("sha256").update(value).digest();
}

/** The credential in `Authorization`: a Bearer token, or the password of Basic (browsers). */
function presented(request: Request): { scheme: "bearer" | "basic"; secret: string } | null {
  const header = request.headers.get("authorization");
  if (header === null) return null;
  const space = header.indexOf(" ");
  if (space === -1) return null;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === "bearer") return { scheme, secret: value };
  if (scheme === "basic") {
    // ? Browsers cannot add a Bearer header to a page load or an EventSource, but they
    // resend Basic credentials to the origin: the user name is ignored, the password is
    // the token.
    let decoded: string;
    try {
      decoded = Buffer.from(value, "base64").toString("utf8");
    } catch {
      return null;
    }
    const colon = decoded.indexOf(":");
    return colon === -1 ? null : { scheme, secret: decoded.slice(colon + 1) };
  }
  return null;
}

export function createAccessPolicy(options: AccessPolicyOptions): AccessPolicy {
  const { log } = options;
  const writeDigest = options.token === null ? null : digest(options.token);
  const readDigest = options.readToken === null ? null : digest(options.readToken);
  const limiter = options.limiter ?? createRateLimiter({ rate: options.writeRate, burst: options.writeBurst });
  const counts = { unauthorized: 0, forbidden: 0, misdirected: 0 };
  const hosts = options.hosts ?? createHostCheck({ allowed: [] });
  const isLocal = options.isLocal ?? localAddressCheck();

  if (writeDigest === null) {
    // ? "this host", not "loopback": an agent that connects to the host's own LAN address
    // is accepted too (isLocal), and the README says so; the WARN must not say less.
    log.warn(
      "no write token: writes accepted from this host only (loopback or its own non-link-local interface addresses)",
      {
        variable: "NEOLIGHT_DASHBOARD_TOKEN",
      },
    );
  }

  function refuse(
    error: HttpError,
    reason: string,
    request: Request,
    address: string | null,
    path: string,
    extra: Record<string, unknown> = {},
  ): never {
    if (error.status === 401) counts.unauthorized++;
    else if (error.status === 403) counts.forbidden++;
    else if (error.status === 421) counts.misdirected++;
    if (!isSafe(request.method)) options.onWriteRefused?.(error.status === 429 ? "rate_limited" : "unauthorised");
    // ? A client hammering with a bad token must not flood the log: a few lines per client
    // address per window, then one line with the count of the others (the logger's sampler).
    if (log.admit("request refused", clientKey(address))) {
      const ua = request.headers.get("user-agent");
      log.warn("request refused", {
        reason,
        status: error.status,
        method: clip(request.method),
        path: clip(path),
        address,
        user_agent: ua === null ? null : clip(ua),
        ...extra,
      });
    }
    throw error;
  }

  function matches(secret: string, expected: Buffer | null): boolean {
    return expected !== null && crypto.timingSafeEqual(digest(secret), expected);
  }

  /** Refuses with 421 when the request's Host names another host (a rebound name). */
  function checkHost(request: Request, address: string | null, path: string): void {
    const host = request.headers.get("host");
    if (hosts.allows(host)) return;
    const name = clip(hostName(host as string));
    refuse(new MisdirectedRequestError(name), "host name not allowed", request, address, path, { host: name });
  }

  return {
    guardsReads: readDigest !== null,
    checkPage: checkHost,
    checkWrite(request, address, path) {
      // ? First: from a rebound name, a browser on this host passes the address rule below.
      checkHost(request, address, path);
      if (writeDigest !== null) {
        const cred = presented(request);
        if (cred === null || cred.scheme !== "bearer") {
          refuse(
            new UnauthorizedError("this write needs Authorization: Bearer <token>", "Bearer"),
            "no write token",
            request,
            address,
            path,
          );
        }
        if (!matches(cred.secret, writeDigest)) {
          refuse(new ForbiddenError("invalid token for writes"), "wrong write token", request, address, path);
        }
      } else if (!isLocal(address)) {
        refuse(
          new ForbiddenError("writes are accepted only from this host (no NEOLIGHT_DASHBOARD_TOKEN is configured)"),
          "write from a non-loopback address",
          request,
          address,
          path,
        );
      }
      // ? All of loopback is one client (clientKey): 127.0.0.0/8 has 16 million addresses, and
      // one bucket each would let a local flooder multiply the limit (issue 15).
      const wait = limiter.take(clientKey(address));
      if (wait > 0) {
        const error = new TooManyRequestsError(wait, options.writeRate);
        refuse(error, "write rate limit", request, address, path);
      }
    },
    checkRead(request, address, path) {
      if (readDigest === null || isLocal(address) || OPEN_READ_PATHS.has(path)) return;
      const cred = presented(request);
      if (cred === null) {
        refuse(
          new UnauthorizedError("this read needs Authorization: Bearer <read token>", "Basic"),
          "no read token",
          request,
          address,
          path,
        );
      }
      // The write token also reads: whoever may change the state may see it.
      if (!matches(cred.secret, readDigest) && !matches(cred.secret, writeDigest)) {
        refuse(new ForbiddenError("invalid token for reads"), "wrong read token", request, address, path);
      }
    },
    stats: () => ({
      writes: writeDigest === null ? "loopback" : "token",
      reads: readDigest === null ? "open" : "token",
      ...counts,
      rate_limit: limiter.stats(),
    }),
  };
}

/** Methods that never change state. OPTIONS is a CORS preflight: browsers send it bare. */
export function isSafe(method: string): boolean {
  return method === "GET" || method === "HEAD" || method === "OPTIONS";
}

/** "/meta/metrics" from "http://host:8100/meta/metrics?x": for log lines only. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start === -1) return "/";
  const query = url.indexOf("?", start);
  return query === -1 ? url.slice(start) : url.slice(start, query);
}

export interface AccessControl {
  /**
   * Global hooks applying the read rule to every route registered after them, when a read
   * token is configured (none otherwise: reads then cost nothing here).
   */
  hooks: Elysia;
  /**
   * The write rule, for the write path to call before it reads a body (write-route.ts:
   * WriteGate.check). Throws the refusal; returns when the write may proceed.
   */
  checkWrite(request: Request): void;
  /** The request's client address (the TCP peer), for audit lines. */
  clientOf(request: Request): string | null;
  /** The page's rule (AccessPolicy.checkPage), for GET / to call before it answers the page. */
  checkPage(request: Request): void;
}

/**
 * ? Reads are checked in a global beforeHandle: it returns at once for a GET from this host
 * and runs before the handler. Writes are checked by the write path before their body is
 * read (write-route.ts says why not here).
 * The server is taken from onStart rather than from the context: naming `server` in a hook
 * makes Elysia define a getter on every request's context.
 */
export function accessControl(policy: AccessPolicy, clientAddress: ClientAddress): AccessControl {
  let server: Server<unknown> | null = null;
  const hooks = new Elysia({ name: "access-control" }).onStart((app) => {
    server = (app.server as Server<unknown> | null) ?? null;
  });
  if (policy.guardsReads) {
    hooks.onBeforeHandle({ as: "global" }, ({ request, path }) => {
      const method = request.method;
      if (method === "GET" || method === "HEAD") policy.checkRead(request, clientAddress(request, server), path);
    });
  }
  return {
    hooks: hooks as unknown as Elysia,
    checkWrite(request) {
      if (isSafe(request.method)) return;
      policy.checkWrite(request, clientAddress(request, server), pathOf(request.url));
    },
    clientOf: (request) => clientAddress(request, server),
    checkPage(request) {
      policy.checkPage(request, clientAddress(request, server), pathOf(request.url));
    },
  };
}
