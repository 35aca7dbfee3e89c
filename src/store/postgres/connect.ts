// Opening the PostgreSQL client (Bun's built-in SQL, no dependency) with every wait bounded,
// and the one rule about its URL: the password never leaves this process. Every log line,
// /status field and error message that names the database goes through redactUrl or
// redactText first, Bun's own error messages included.
// ? A type import and `Bun.SQL` at the call: a value import of `SQL` from "bun" is bundled
// as a module-level read of `Bun.SQL`, which loads Bun's SQL client (2-3 ms of every
// start-up, issue 14) even in the embedded mode, which never opens it.
import type { SQL } from "bun";

/** What replaces a password wherever the URL or a message would show it. */
export const REDACTED = "***";

/**
 * Longest wait for a new connection, in whole seconds (Bun's unit). ? A black-holed network
 * never answers a SYN: without it a commit would wait for Bun's default of 30 s. Callers
 * bound their own work tighter still (the commit's timer); this bounds the connection
 * attempts nobody waits for (the follower's reconnects).
 */
export const CONNECT_TIMEOUT_S = 5;
/**
 * Connections of one replica: one commit at a time, one catch-up or head check beside it
 * (they share one queue with commits, but the head check does not), plus headroom for a
 * connection being discarded after a timeout while the next commit opens its own. LISTEN
 * has a dedicated connection of its own on top.
 */
export const POOL_MAX = 4;
/** Idle connections close after this many seconds: a replica at rest holds none but LISTEN's. */
export const IDLE_TIMEOUT_S = 60;

const POSTGRES_SCHEMES = new Set(["postgres:", "postgresql:"]);

/** The database URL for logs, /status and errors: the password (in the authority or `?password=`) as ***. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    // ? `user:password@host` parses as a URL of scheme "user:": only postgres URLs are trusted to split right.
    if (!POSTGRES_SCHEMES.has(parsed.protocol)) throw new Error("not a postgres URL");
    if (parsed.password !== "") parsed.password = REDACTED;
    for (const key of [...parsed.searchParams.keys()]) {
      if (key.toLowerCase() === "password") parsed.searchParams.set(key, REDACTED);
    }
    return parsed.toString();
  } catch {
    // ? Not a URL at all (a typo): still never echo what could be a password.
    const at = url.lastIndexOf("@");
    const rest = at === -1 ? url : `${REDACTED}@${url.slice(at + 1)}`;
    return rest.replace(/(password=)[^&]*/gi, `$1${REDACTED}`);
  }
}

/** The password `url` carries, as written and decoded (empty when none). */
function passwordsOf(url: string): string[] {
  const found: string[] = [];
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") found.push(parsed.password, decodeURIComponent(parsed.password));
    for (const [key, value] of parsed.searchParams) {
      if (key.toLowerCase() === "password" && value !== "") found.push(value, encodeURIComponent(value));
    }
    if (!POSTGRES_SCHEMES.has(parsed.protocol)) throw new Error("not a postgres URL");
  } catch {
    // ? Whatever precedes the last @ may be a password: take all of it, and each part of it.
    const at = url.lastIndexOf("@");
    if (at !== -1) {
      const userinfo = url.slice(0, at).replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
      found.push(userinfo, ...userinfo.split(":").slice(1));
    }
  }
  // ? Longest first: a decoded form may be a substring of the encoded one.
  return [...new Set(found.filter((p) => p !== ""))].sort((a, b) => b.length - a.length);
}

/**
 * `text` (an error message, Bun's or the server's) with the URL and its password replaced:
 * a driver or server may quote either back ("password authentication failed" does not, but
 * nothing promises that of every version).
 */
export function redactText(text: string, url: string): string {
  let out = text.split(url).join(redactUrl(url));
  for (const password of passwordsOf(url)) out = out.split(password).join(REDACTED);
  return out;
}

/** An error's message, redacted; for what is logged and shown about a failed query. */
export function errorText(err: unknown, url: string): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { errno?: unknown; code?: unknown } | null)?.errno ?? (err as { code?: unknown } | null)?.code;
  return redactText(typeof code === "string" && code !== "" ? `${message} (${code})` : message, url);
}

/** The database could not be reached or did not answer in time; the message is redacted. */
export class DatabaseError extends Error {
  constructor(
    message: string,
    /** Whether the database's reachability is in doubt (no answer, refused, dropped), not only this statement. */
    readonly unreachable: boolean,
  ) {
    super(message);
    this.name = "DatabaseError";
  }
}

/**
 * SQLSTATE classes that say the server itself is not serving (08: connection exception,
 * 53: out of resources such as too many connections, 57P: shutdown, starting up) and the
 * statement timeout (57014): waiting that long means a commit cannot be had, which is what
 * "unreachable" stands for here (the fail-safe must not wait for a reachable-but-stuck one).
 */
function serverUnavailable(errno: string): boolean {
  return errno.startsWith("08") || errno.startsWith("53") || errno.startsWith("57P") || errno === "57014";
}

/** Whether `err` (from Bun's SQL) puts the database's reachability in doubt. */
export function isUnreachable(err: unknown): boolean {
  if (err instanceof DatabaseError) return err.unreachable;
  const { code, errno } = (err ?? {}) as { code?: unknown; errno?: unknown };
  if (code === "ERR_POSTGRES_SERVER_ERROR") return typeof errno === "string" && serverUnavailable(errno);
  // ? Everything else Bun raises itself (refused, closed, TLS, timed out) is about the connection.
  return true;
}

export interface ClientOptions {
  /** Ends a transaction left open this long (a client that vanished mid-commit), ms, on the server. */
  idleInTransactionMs: number;
}

/**
 * A pooled client for `url`. Connects lazily (the first query), so this never throws for an
 * unreachable server; a URL Bun cannot use throws a DatabaseError with the URL redacted.
 * ? idle_in_transaction_session_timeout on the server: a replica killed or cut off while it
 * holds the head row lock must not stall every other replica's commits for longer.
 */
export function openClient(url: string, options: ClientOptions): SQL {
  try {
    return new Bun.SQL(url, {
      max: POOL_MAX,
      connectionTimeout: CONNECT_TIMEOUT_S,
      idleTimeout: IDLE_TIMEOUT_S,
      connection: {
        application_name: "neolight-dashboard",
        idle_in_transaction_session_timeout: Math.max(1, Math.round(options.idleInTransactionMs)),
      },
    });
  } catch (err) {
    throw new DatabaseError(`cannot use the database URL ${redactUrl(url)}: ${errorText(err, url)}`, false);
  }
}
