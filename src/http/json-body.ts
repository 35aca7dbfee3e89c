// Reading a JSON-object request body with limits, for every write route.
// Why not Elysia's default parser: it answers invalid JSON with its own shape and has no
// size, depth or key-count limits; a writer that gates trading needs all of those.
// And why it coerces instead of refusing: a body is accepted or refused whole, so refusing
// a hive snapshot for one agent's `sharpe_30d: NaN` (what Python's json writes by default)
// dropped the paused guardian in the same body on every retry (issue 15). Only the safety
// keys a route names are strict; any other value that breaks the schema is stored as null
// and its path is listed in the answer.
import { isUtf8 } from "node:buffer";
import { type TSchema, Type, TypeGuard } from "@sinclair/typebox";
import { type TypeCheck, TypeCompiler, type ValueError } from "@sinclair/typebox/compiler";
import {
  BadRequestError,
  describeProblems,
  type HttpError,
  PayloadTooLargeError,
  RequestTimeoutError,
  UnprocessableError,
  UnsupportedMediaTypeError,
} from "./errors";

/**
 * Largest accepted body by default (NEOLIGHT_MAX_BODY_MB). The hive snapshot is ~330 bytes
 * per agent: 1 MiB holds ~3,000 agents.
 */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Deepest accepted nesting. The contract's deepest path is 4 levels. */
export const MAX_DEPTH = 32;
/**
 * Most keys + array items in one body by default (NEOLIGHT_MAX_BODY_KEYS): bounds the work
 * of validating and storing it. The hive snapshot has ~17 per agent: ~2,900 agents.
 */
export const MAX_NODES = 50_000;
/**
 * A body over a limit that may carry safety keys (a route's `strict` keys: the guardian) is
 * still read up to this many times the limit, so that its safety keys can be applied: a
 * hive that grew past the limit must not lose its pause with the rest (issue 16, the rule
 * of issue 15: a guardian update is never refused for size). Beyond it, nothing is read.
 */
export const SAFETY_READ_FACTOR = 16;
/** Bun refuses any request body over 128 MiB (maxRequestBodySize) before we see it. */
const SERVER_BODY_CEILING = 128 * 1024 * 1024;

/** The size limits of a body (config: NEOLIGHT_MAX_BODY_MB, NEOLIGHT_MAX_BODY_KEYS). */
export interface BodyLimits {
  /** Largest body, bytes. */
  maxBytes: number;
  /** Most keys and array items. */
  maxNodes: number;
}

export const DEFAULT_BODY_LIMITS: BodyLimits = { maxBytes: MAX_BODY_BYTES, maxNodes: MAX_NODES };

/** The options that raise each limit, as the 413/400 message names them. */
const RAISE_BYTES = "raise NEOLIGHT_MAX_BODY_MB (--max-body-mb)";
const RAISE_NODES = "raise NEOLIGHT_MAX_BODY_KEYS (--max-body-keys)";

function tooLarge(limit: number): PayloadTooLargeError {
  return new PayloadTooLargeError(limit, RAISE_BYTES);
}

function tooManyNodes(limit: number): BadRequestError {
  return new BadRequestError(`body holds more than ${limit} keys and items (the body key limit: ${RAISE_NODES})`);
}

/**
 * `bytes` as text, or null when they are not valid UTF-8; a leading byte-order mark is
 * dropped, as TextDecoder drops it.
 * ? Not TextDecoder's fatal mode: it was 2.6x slower at 1 MB (2.1 ms against 0.8 ms for
 * this validation and copy), and at 3,000 agents the decode was a fifth of the write path.
 */
function utf8Text(bytes: Uint8Array): string | null {
  if (!isUtf8(bytes)) return null;
  const start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, bytes.byteLength - start).toString("utf8");
}

function isJsonType(contentType: string | null): boolean {
  if (contentType === null) return false;
  const type = (contentType.split(";")[0] as string).trim().toLowerCase();
  return type === "application/json" || (type.startsWith("application/") && type.endsWith("+json"));
}

/**
 * Keys refused at any depth. JSON.parse makes them plain own properties and the store copies
 * with defineProperty, so they could not reach a prototype here; but whoever reads the
 * served document next (the page, a Python or JS agent doing a deep merge) might not be as
 * careful, and no NeoLight agent has a reason to send them.
 */
export const FORBIDDEN_KEYS: readonly string[] = ["__proto__", "constructor", "prototype"];
const [FORBIDDEN_A, FORBIDDEN_B, FORBIDDEN_C] = FORBIDDEN_KEYS as [string, string, string];

/** "per_agent/a~1b/pnl_1d": a JSON pointer without its leading slash, as TypeBox's error paths (and so the 422s) spell it. */
function pointer(segments: readonly string[]): string {
  return segments.map((s) => s.replaceAll("~", "~0").replaceAll("/", "~1")).join("/");
}

/** The first node `match` accepts and its "guardian/is_paused" style path (slow path: errors only). */
function find(root: unknown, match: (key: string, value: unknown) => boolean): { key: string; path: string } | null {
  const walk = (value: unknown, path: string[], depth: number): { key: string; path: string } | null => {
    if (typeof value !== "object" || value === null || depth > MAX_DEPTH) return null;
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
    for (const [key, child] of entries) {
      if (match(key, child)) return { key, path: [...path, key].join("/") };
      const found = walk(child, [...path, key], depth + 1);
      if (found !== null) return found;
    }
    return null;
  };
  return walk(root, [], 1);
}

/** Index of the quote closing the JSON string that opens at `open` (text is valid JSON). */
function stringEnd(text: string, open: number): number {
  let end = text.indexOf('"', open + 1);
  for (;;) {
    let slashes = 0;
    while (text.charCodeAt(end - 1 - slashes) === 92) slashes++;
    if (slashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
}

/** Index of the first non-whitespace character at or after `i`. */
function skipSpace(text: string, i: number): number {
  let c = text.charCodeAt(i);
  while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++i);
  return i;
}

/**
 * How many object keys valid JSON `text` spells out: every string followed by a colon.
 * Compared with the keys JSON.parse kept, it tells whether a key was repeated (the parser
 * silently keeps the last one) at the cost of one indexOf per string.
 */
function countKeysInText(text: string): number {
  let keys = 0;
  let i = text.indexOf('"');
  while (i !== -1) {
    const after = skipSpace(text, stringEnd(text, i) + 1);
    if (text.charCodeAt(after) === 58) keys++;
    i = text.indexOf('"', after);
  }
  return keys;
}

/** The first repeated key of valid JSON `text` and its path (slow path: errors only). */
function findDuplicate(text: string): { key: string; path: string } | null {
  interface Frame {
    keys: Set<string> | null;
    name: string;
    index: number;
    last: string;
  }
  const stack: Frame[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const top = stack[stack.length - 1];
    if (c === 34) {
      const end = stringEnd(text, i);
      const after = skipSpace(text, end + 1);
      if (top?.keys && text.charCodeAt(after) === 58) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (top.keys.has(key)) return { key, path: [...stack.slice(1).map((f) => f.name), key].join("/") };
        top.keys.add(key);
        top.last = key;
      }
      i = end;
    } else if (c === 123 || c === 91) {
      const name = top === undefined ? "" : top.keys ? top.last : String(top.index);
      stack.push({ keys: c === 123 ? new Set() : null, name, index: 0, last: "" });
    } else if (c === 125 || c === 93) stack.pop();
    else if (c === 44 && top && top.keys === null) top.index++;
  }
  return null;
}

/**
 * Throws when the parsed body breaks a limit or cannot be stored faithfully: nesting deeper
 * than MAX_DEPTH or more than `ceiling` keys and items (400, naming `limit`), a key repeated in one object (400: which one
 * the poster meant is unknowable), a FORBIDDEN_KEYS key (400), a lone surrogate in a key or
 * string (400, loneSurrogateAt says why). A number JSON.parse turned
 * into ±Infinity (1e400) is replaced by null in place, and its path returned: JSON cannot
 * carry it, and it is no more a figure than NaN.
 */
function checkShape(
  root: Record<string, unknown>,
  text: string,
  ceiling: number,
  limit: number,
): { nonFinite: string[]; nodes: number; numbers: number } {
  let nodes = 0;
  let numbers = 0;
  let objectKeys = 0;
  let forbidden = false;
  let infinite = false;
  const values: object[] = [root];
  const depths: number[] = [1];
  while (values.length > 0) {
    const value = values.pop() as object;
    const depth = depths.pop() as number;
    if (depth > MAX_DEPTH) throw new BadRequestError(`body nests deeper than ${MAX_DEPTH} levels`);
    let children: unknown[];
    if (Array.isArray(value)) children = value;
    else {
      children = Object.values(value);
      objectKeys += children.length;
      if (Object.hasOwn(value, FORBIDDEN_A) || Object.hasOwn(value, FORBIDDEN_B) || Object.hasOwn(value, FORBIDDEN_C)) {
        forbidden = true;
      }
    }
    nodes += children.length;
    if (nodes > ceiling) throw tooManyNodes(limit);
    for (const child of children) {
      if (typeof child === "object") {
        if (child !== null) {
          values.push(child);
          depths.push(depth + 1);
        }
      } else if (typeof child === "number") {
        numbers++;
        if (!Number.isFinite(child)) infinite = true;
      }
    }
  }
  // ? Before the duplicate check, whose message quotes the key: an answer must never carry
  // a lone surrogate either, so this one shows it as U+FFFD.
  if (maySpellSurrogate(text)) {
    const at = loneSurrogateAt(root);
    if (at !== null) {
      throw new BadRequestError(
        `lone UTF-16 surrogate in a key or string at ${JSON.stringify(at.toWellFormed())} (shown as U+FFFD): strict JSON parsers refuse it, send valid Unicode`,
      );
    }
  }
  if (objectKeys !== countKeysInText(text)) {
    const dup = findDuplicate(text);
    throw new BadRequestError(
      `duplicate key ${JSON.stringify(dup?.key)} at ${dup?.path}: JSON keeps only one of them, send each key once`,
    );
  }
  if (forbidden) {
    const at = find(root, (key) => FORBIDDEN_KEYS.includes(key));
    throw new BadRequestError(
      `key ${JSON.stringify(at?.key)} at ${at?.path} is not accepted (${FORBIDDEN_KEYS.join(", ")} are refused at any depth)`,
    );
  }
  return { nonFinite: infinite ? nullInfinite(root) : [], nodes, numbers };
}

/**
 * Whether JSON `text` may hold a lone UTF-16 surrogate: only an escape can spell one (valid
 * UTF-8, which the body was decoded from, cannot), so without `\uD800`-`\uDFFF` there is none.
 * ? A cheap gate on the text: the exact walk (loneSurrogateAt) runs only when it matches.
 */
export function maySpellSurrogate(text: string): boolean {
  return SURROGATE_ESCAPE.test(text);
}
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/**
 * The path ("per_agent/a/reason") of the first key or string value under
 * `root` that holds a lone surrogate (a high one without its low half, or a low one alone),
 * or null. Why refused, not replaced: JSON.stringify writes one as a `\ud800` escape, which
 * jq and other strict parsers refuse, so after one such key `curl | jq` failed on the whole
 * document (issue 15 item 12); and a poster whose key silently became U+FFFD could not find
 * it again.
 */
export function loneSurrogateAt(root: unknown): string | null {
  const lone = (key: string, value: unknown) =>
    !key.isWellFormed() || (typeof value === "string" && !value.isWellFormed());
  return find(root, lone)?.path ?? null;
}

/**
 * Rewrites, in place, every key and string under `root` that holds a lone surrogate with
 * U+FFFD in its place (String.prototype.toWellFormed), keeping key order; returns their
 * paths (as loneSurrogateAt spells them, well-formed). For what is not a request, which
 * cannot be refused (the state file at start-up: a hand edit). Slow path: a walk of it all.
 */
export function repairLoneSurrogates(root: Record<string, unknown>): string[] {
  const paths: string[] = [];
  const walk = (value: Record<string, unknown> | unknown[], path: string[]) => {
    const entries = Object.entries(value);
    const rename = !Array.isArray(value) && entries.some(([key]) => !key.isWellFormed());
    if (rename) for (const [key] of entries) delete (value as Record<string, unknown>)[key];
    for (const [key, child] of entries) {
      const name = key.toWellFormed();
      const at = [...path, name];
      if (name !== key) paths.push(at.join("/"));
      let next = child;
      if (typeof child === "string" && !child.isWellFormed()) {
        next = child.toWellFormed();
        paths.push(at.join("/"));
      } else if (typeof child === "object" && child !== null) walk(child as Record<string, unknown>, at);
      if (rename || next !== child) {
        Object.defineProperty(value, name, { value: next, enumerable: true, writable: true, configurable: true });
      }
    }
  };
  walk(root, []);
  return paths;
}

/** Replaces every non-finite number under `root` by null; their paths (slow path: only when there are some). */
function nullInfinite(root: Record<string, unknown>): string[] {
  const paths: string[] = [];
  const walk = (value: Record<string, unknown> | unknown[], path: string[]) => {
    for (const [key, child] of Object.entries(value)) {
      if (typeof child === "number" && !Number.isFinite(child)) {
        (value as Record<string, unknown>)[key] = null;
        paths.push(pointer([...path, key]));
      } else if (typeof child === "object" && child !== null) walk(child as Record<string, unknown>, [...path, key]);
    }
  };
  walk(root, []);
  return paths;
}

/** The tokens Python's json.dumps writes for non-finite floats (allow_nan=True, its default). */
const NON_FINITE_TOKENS = ["NaN", "Infinity", "-Infinity"] as const;

/**
 * `text` (which JSON.parse refused) with every NaN, Infinity and -Infinity token outside a
 * string replaced by null, and the paths of those values; null when it holds none or is
 * broken in another way that stops the scan. Slow path: runs only after a failed parse.
 */
function nullNonFiniteTokens(text: string): { text: string; paths: string[] } | null {
  interface Frame {
    keys: boolean;
    name: string;
    index: number;
    last: string;
  }
  const stack: Frame[] = [];
  const paths: string[] = [];
  let out = "";
  let copied = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const top = stack[stack.length - 1];
    if (c === 34) {
      // ? stringEnd assumes valid JSON: in broken text the closing quote may be missing.
      const end = text.indexOf('"', i + 1) === -1 ? -1 : stringEnd(text, i);
      if (end < 0) return null;
      if (top?.keys && text.charCodeAt(skipSpace(text, end + 1)) === 58) {
        const raw = text.slice(i + 1, end);
        try {
          top.last = raw.includes("\\") ? (JSON.parse(`"${raw}"`) as string) : raw;
        } catch {
          return null;
        }
      }
      i = end;
    } else if (c === 123 || c === 91) {
      const name = top === undefined ? "" : top.keys ? top.last : String(top.index);
      stack.push({ keys: c === 123, name, index: 0, last: "" });
    } else if (c === 125 || c === 93) stack.pop();
    else if (c === 44 && top && !top.keys) top.index++;
    else if (c === 78 || c === 73 || c === 45) {
      const token = NON_FINITE_TOKENS.find((t) => text.startsWith(t, i));
      if (token === undefined || top === undefined) continue;
      out += `${text.slice(copied, i)}null`;
      copied = i + token.length;
      paths.push(pointer([...stack.slice(1).map((f) => f.name), top.keys ? top.last : String(top.index)]));
      i = copied - 1;
    }
  }
  return paths.length === 0 ? null : { text: out + text.slice(copied), paths };
}

/**
 * Reads `request`'s body as one JSON object. Throws 413 over MAX_BODY_BYTES, 408 when the
 * body never arrives whole, 400 for invalid UTF-8, invalid JSON or a non-object (whatever
 * the content type), 415 for a JSON object not labelled as JSON, 400 for what checkShape
 * refuses. NaN, Infinity and -Infinity tokens (not JSON, but what Python writes) and
 * numbers beyond a double are read as null: `nonFinite` lists their paths.
 * With `safetyKeys`, a body over a limit (but within SAFETY_READ_FACTOR times it) is read
 * whole all the same and checked like any other; `body` then holds only its safety keys, and
 * `overLimit` is the refusal to answer once they are applied. One without any safety key is
 * refused at once.
 */
export async function readJsonObject(
  request: Request,
  limits: BodyLimits = DEFAULT_BODY_LIMITS,
  safetyKeys: readonly string[] = [],
): Promise<ReadBody> {
  const salvage = safetyKeys.length > 0;
  const { maxBytes, maxNodes } = limits;
  const byteCeiling = salvage
    ? Math.max(maxBytes, Math.min(SERVER_BODY_CEILING, maxBytes * SAFETY_READ_FACTOR))
    : maxBytes;
  const beyond = () =>
    salvage
      ? new PayloadTooLargeError(
          maxBytes,
          `${RAISE_BYTES}; over ${byteCeiling} bytes nothing of it is read, its guardian included`,
        )
      : tooLarge(maxBytes);
  const length = request.headers.get("content-length");
  if (length !== null && Number(length) > byteCeiling) throw beyond();
  // ? With a declared length the server already bounds the body: read it in one go (the
  // hot path). Without one (chunked) count bytes as they come and stop at the limit.
  let bytes: Uint8Array;
  try {
    bytes =
      length !== null ? new Uint8Array(await request.arrayBuffer()) : await readLimited(request, byteCeiling, beyond);
  } catch (err) {
    if (err instanceof PayloadTooLargeError) throw err;
    // ? Bun aborts the body when the client stops sending for NEOLIGHT_IDLE_TIMEOUT_S or
    // hangs up; nobody is left to answer, but the log should say what happened, not 500.
    throw new RequestTimeoutError();
  }
  let parsed: ReturnType<typeof parseObject>;
  try {
    parsed = parseObject(
      bytes,
      request.headers.get("content-type"),
      salvage ? maxNodes * SAFETY_READ_FACTOR : maxNodes,
      maxNodes,
    );
  } catch (err) {
    // ? A body over the byte limit, read only for its safety keys, that cannot give them
    // is refused for its size, as it was before it was read.
    if (bytes.byteLength > maxBytes) throw tooLarge(maxBytes);
    throw err;
  }
  const { body, nonFinite, nodes, textBound } = parsed;
  const overLimit =
    bytes.byteLength > maxBytes ? tooLarge(maxBytes) : nodes > maxNodes ? tooManyNodes(maxNodes) : undefined;
  if (overLimit === undefined) return { body, nonFinite, textBound };
  const safety: Record<string, unknown> = {};
  for (const key of safetyKeys) if (Object.hasOwn(body, key)) safety[key] = body[key];
  if (Object.keys(safety).length === 0) throw overLimit;
  const under = (path: string) => Object.hasOwn(safety, path.split("/")[0] as string);
  return { body: safety, nonFinite: nonFinite.filter(under), overLimit, textBound };
}

/**
 * `bytes` as one JSON object, checked by checkShape (at most `ceiling` keys and items, the
 * 400 naming `limit`), with the paths read as null, its count of keys and items, and its textBound.
 */
function parseObject(
  bytes: Uint8Array,
  contentType: string | null,
  ceiling: number,
  limit: number,
): { body: Record<string, unknown>; nonFinite: string[]; nodes: number; textBound: number } {
  const decoded = utf8Text(bytes);
  if (decoded === null) throw new BadRequestError("request body is not valid UTF-8");
  let text = decoded;
  let value: unknown;
  let tokens: string[] = [];
  try {
    value = JSON.parse(text);
  } catch (err) {
    // ? Only a body JSON.parse refused pays for the scan: the hot path is unchanged.
    const nulled = nullNonFiniteTokens(text);
    try {
      if (nulled === null) throw err;
      value = JSON.parse(nulled.text);
    } catch {
      throw new BadRequestError(`request body is not valid JSON: ${(err as Error).message}`);
    }
    text = nulled.text;
    tokens = nulled.paths;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new BadRequestError(
      `request body must be a JSON object, got ${Array.isArray(value) ? "an array" : typeof value === "object" ? "null" : `a ${typeof value}`}`,
    );
  }
  // ? The content type is judged last: CONTRACT section 4 says a body that is not a JSON
  // object gets 400 whatever it was labelled; a JSON object sent without saying so is 415.
  if (!isJsonType(contentType)) throw new UnsupportedMediaTypeError(contentType);
  const body = value as Record<string, unknown>;
  const shape = checkShape(body, text, ceiling, limit);
  return {
    body,
    nonFinite: shape.nonFinite.length === 0 ? tokens : [...tokens, ...shape.nonFinite],
    nodes: shape.nodes,
    // ? Of the text parsed: NaN tokens rewritten as null are longer (a BOM counted is only looser).
    textBound: textBound(text === decoded ? bytes.byteLength : Buffer.byteLength(text), shape.numbers),
  };
}

/** What readJsonObject read. */
export interface ReadBody {
  body: Record<string, unknown>;
  /** Paths of `body` read as null: NaN, Infinity and numbers beyond a double. */
  nonFinite: string[];
  /** The body broke a limit and `body` holds only its safety keys: the refusal to answer once they are applied. */
  overLimit?: HttpError;
  /** At least the UTF-8 bytes of JSON.stringify(body), from the text it was parsed from (textBound). */
  textBound: number;
}

/**
 * Bytes a number's JSON text can gain over the token it was parsed from. Only an exponent
 * makes it longer: "1e20" (4 bytes) is written "100000000000000000000" (21), "1e-6" as
 * "0.000001" (+4), "1e21" as "1e+21" (+1). Without one the shortest round-trip digits are
 * never more than the token's, and the decimal point stays where the token had it.
 */
const NUMBER_GROWTH = 17;

/**
 * At least the UTF-8 bytes JSON.stringify gives a value parsed from `bytes` of text holding
 * `numbers` numbers: JSON.stringify writes nothing longer than the token it came from (no
 * whitespace, the shortest escapes, raw UTF-8) but for numbers (NUMBER_GROWTH each).
 * ? Issue 16: the document's byte cap is judged on this, not on a serialisation of every
 * value per post: at 3,000 agents that was 2.7 ms of a post's ~15 ms, for a text the file
 * used only when the post was the last of its batch (one in ~25 at 50 connections). A
 * count of the exponents in the text would be tighter (a hive's numbers have none), but
 * its scan cost 0.4 ms per MB; the numbers are counted by checkShape's walk for nothing,
 * and the bound (1.8 MB for 3,000 agents' 0.97 MB) still fits the default 8 MiB cap twice.
 */
function textBound(bytes: number, numbers: number): number {
  return bytes + numbers * NUMBER_GROWTH;
}

/** Reads at most `limit` bytes; a chunked body that grows past it is cut off with `tooLarge()`. */
async function readLimited(request: Request, limit: number, tooLarge: () => HttpError): Promise<Uint8Array> {
  if (request.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(total);
  let off = 0;
  for (const chunk of chunks) {
    out.set(chunk, off);
    off += chunk.byteLength;
  }
  return out;
}

/** Sets `root` at JSON pointer `path` (TypeBox's, with its leading slash) to null; false when a parent is not a container. */
function setNull(root: Record<string, unknown>, path: string): boolean {
  const segments = path
    .slice(1)
    .split("/")
    .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
  let at: unknown = root;
  for (const segment of segments.slice(0, -1)) {
    if (typeof at !== "object" || at === null) return false;
    at = (at as Record<string, unknown>)[segment];
  }
  if (typeof at !== "object" || at === null) return false;
  Object.defineProperty(at, segments[segments.length - 1] as string, {
    value: null,
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return true;
}

/** What coerce() made of a value that failed its schema. */
export interface Coerced {
  /** Paths ("per_agent/alpha/sharpe_30d") now holding null, shallowest first. */
  coerced: string[];
  /** Schema problems under a strict key: the value cannot be taken (nothing was changed under those keys). */
  refused: ValueError[];
}

/**
 * An object schema's checks taken apart: `shell` is the schema with every property allowed
 * any value (it judges the top level alone: a missing required key, a key not allowed), and
 * `sections` each property's own check. Compiled once per schema (sectionChecks).
 */
interface SectionChecks {
  shell: TypeCheck<TSchema>;
  sections: readonly Section[];
}

const checksBySchema = new WeakMap<TSchema, TypeCheck<TSchema>>();

/**
 * `schema`'s compiled check, made on first use and shared by every caller of the same schema
 * object. ? Issue 14: a compile is not cheap (MetaMetricsUpdate: 5-15 ms), and the POST
 * route's parser and the document's restore each compiled that schema at start-up, the
 * restore's at import; module-level compiles of checks used later (or, like the shared agent
 * files', only with PostgreSQL) put their cost on the path to the first 200 as well.
 */
export function compiledCheck<T extends TSchema>(schema: T): TypeCheck<T> {
  let check = checksBySchema.get(schema);
  if (check === undefined) {
    check = TypeCompiler.Compile(schema);
    checksBySchema.set(schema, check);
  }
  return check as TypeCheck<T>;
}

/** One top-level property's compiled check. */
interface Section {
  key: string;
  required: boolean;
  check: TypeCheck<TSchema>;
}

const sectionsBySchema = new WeakMap<TypeCheck<TSchema>, SectionChecks | null>();

/** `check`'s SectionChecks, or null when its schema is not an object schema. */
function sectionChecks(check: TypeCheck<TSchema>): SectionChecks | null {
  const cached = sectionsBySchema.get(check);
  if (cached !== undefined) return cached;
  const schema = check.Schema();
  let made: SectionChecks | null = null;
  if (TypeGuard.IsObject(schema)) {
    const refs = check.References();
    const required = new Set(schema.required ?? []);
    const keys = Object.getOwnPropertyNames(schema.properties);
    const anything = Object.fromEntries(keys.map((k) => [k, Type.Unknown()]));
    made = {
      shell: TypeCompiler.Compile({ ...schema, properties: anything } as TSchema, refs),
      sections: keys.map((key) => ({
        key,
        required: required.has(key),
        check: TypeCompiler.Compile(schema.properties[key] as TSchema, refs),
      })),
    };
  }
  sectionsBySchema.set(check, made);
  return made;
}

/**
 * `check.Errors(value)`, the same problems in the same order, but walking only the
 * top-level sections that fail their own check.
 * ? Issue 16: TypeBox's error walk visits the whole value, so one bad figure in a 60-byte
 * section made a 1 MB snapshot pay a walk of all of it (38 % of the write path at 3,000
 * agents, where the bench's regime lacked its timestamp). Each section is checked by its
 * compiled check, which is fast, and walked for errors only when it fails.
 */
function* sectionErrors(
  check: TypeCheck<TSchema>,
  value: Record<string, unknown>,
  failing?: readonly Section[],
): Generator<ValueError> {
  const split = sectionChecks(check);
  if (split === null || typeof value !== "object" || value === null || Array.isArray(value)) {
    yield* check.Errors(value);
    return;
  }
  if (failing === undefined) yield* split.shell.Errors(value);
  for (const { key, check: section } of failing ?? failingOf(split, value)) {
    const prefix = `/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`;
    for (const error of section.Errors(value[key])) yield { ...error, path: prefix + error.path };
  }
}

/** The sections of `value` that fail their own check, in the schema's order. */
function failingOf(split: SectionChecks, value: Record<string, unknown>): Section[] {
  const failing: Section[] = [];
  for (const section of split.sections) {
    const child = value[section.key];
    // ? As TypeBox's walk: an optional key is judged only when it holds a value.
    if (!section.required && child === undefined) continue;
    if (!section.check.Check(child)) failing.push(section);
  }
  return failing;
}

/**
 * The top-level sections of `value` that fail `check` ([] when `value` passes it), for
 * coerce(); null when the top level itself fails (a missing required key, a key not
 * allowed) or `check` is not an object schema's and `value` fails it.
 * ? Each section is checked once: a body that fails was checked whole and then section by
 * section, twice the compiled check of a 1 MB snapshot (issue 16).
 */
function failingSections(check: TypeCheck<TSchema>, value: Record<string, unknown>): Section[] | null {
  const split = sectionChecks(check);
  if (split === null) return check.Check(value) ? [] : null;
  if (!split.shell.Check(value)) return null;
  return failingOf(split, value);
}

/**
 * Makes `value` (a fresh object: it is changed in place) fit `check`'s schema where it may:
 * every problem under a top-level key not in `strict` becomes null at its path (a value of
 * the wrong type, a missing required figure, a number that was NaN). Problems under a
 * `strict` key are returned, not fixed: those keys gate trading, and a guessed value there
 * is worse than a refusal. Used for POST bodies and for the state file at start-up alike.
 * `failing`: what failingSections found (the top level passed), so that no section is
 * checked again.
 */
export function coerce(
  check: TypeCheck<TSchema>,
  value: Record<string, unknown>,
  strict: ReadonlySet<string>,
  failing?: readonly Section[],
): Coerced {
  const refused: ValueError[] = [];
  const paths = new Set<string>();
  for (const error of sectionErrors(check, value, failing)) {
    const top = (error.path.split("/")[1] ?? "").replaceAll("~1", "/").replaceAll("~0", "~");
    if (error.path === "" || strict.has(top)) refused.push(error);
    else paths.add(error.path);
  }
  const coerced: string[] = [];
  if (refused.length > 0) return { coerced, refused };
  // ? Shallowest first: once a parent is null its children's problems are gone with it.
  // Its ancestors are looked up in a set: a scan of every path nulled so far was
  // quadratic in the problems (3,000 agents each with one bad figure: 9 M comparisons).
  const nulled = new Set<string>();
  for (const path of [...paths].sort((a, b) => a.length - b.length)) {
    let under = false;
    for (let cut = path.indexOf("/", 1); cut !== -1 && !under; cut = path.indexOf("/", cut + 1)) {
      under = nulled.has(path.slice(0, cut));
    }
    if (under || !setNull(value, path)) continue;
    nulled.add(path);
    coerced.push(path.slice(1));
  }
  return { coerced, refused };
}

/** Paths the parser stored as null, per parsed body (coercedPaths). */
const coercedByBody = new WeakMap<object, readonly string[]>();

/** The paths of `body` (as jsonObjectParser returned it) that hold null because the poster's value could not be used. */
export function coercedPaths(body: object): readonly string[] {
  return coercedByBody.get(body) ?? [];
}

/** Refusals of bodies over a limit whose safety keys were kept (readJsonObject's `overLimit`), per parsed body. */
const overLimitByBody = new WeakMap<object, HttpError>();

/**
 * The refusal of `body` (as jsonObjectParser returned it) when the poster's body broke a size
 * limit and `body` holds only its safety keys, to be applied before answering it; else undefined.
 */
export function overLimitRefusal(body: object): HttpError | undefined {
  return overLimitByBody.get(body);
}

/** ReadBody.textBound of each parsed body, coerced nulls included (jsonTextBound). */
const boundByBody = new WeakMap<object, number>();

/**
 * At least the UTF-8 bytes of JSON.stringify(body) for `body` as jsonObjectParser returned
 * it (with its coerced nulls), while no key is added to it; undefined for any other object
 * or a body over a limit. What the document's byte cap may be judged on without
 * serialising the body (modules/meta/service.ts).
 */
export function jsonTextBound(body: object): number | undefined {
  return boundByBody.get(body);
}

/**
 * Bytes coercing `path` to null may add to a body's JSON: a value of one byte becomes
 * `null` (+3), or a missing required key is added as `"key":null,`.
 */
function coercedGrowth(path: string): number {
  const key = path
    .slice(path.lastIndexOf("/") + 1)
    .replaceAll("~1", "/")
    .replaceAll("~0", "~");
  return Buffer.byteLength(JSON.stringify(key)) + 6;
}

/**
 * `schema` for a route's `body:` when its parse hook is jsonObjectParser: the same schema
 * (types, OpenAPI) with Elysia's own second check turned off. The parser has checked the
 * body already, and its coerced nulls would fail the strict schema again.
 */
export function parsedBodySchema<T extends TSchema>(schema: T): T {
  return { ...schema, noValidate: true };
}

/**
 * A parse hook for a write route: readJsonObject within `limits`, then `schema`: problems
 * under `strict` keys are our own 422, any other is coerced to null (coerce(),
 * coercedPaths()). A body over a limit with strict keys comes back as those keys alone
 * (overLimitRefusal()).
 * ? Elysia would validate the body against the route's schema again afterwards, but a body
 * that fails there makes Elysia build its ValidationError, which interpolates the offending
 * value into a string: a value like {"toString": 1} in a string field throws a TypeError
 * there and the client gets a 500 (found by the fuzz test). So routes turn Elysia's check
 * off (parsedBodySchema) and this is the one check.
 */
export function jsonObjectParser(
  schema: TSchema,
  strict: readonly string[] = [],
  limits: BodyLimits = DEFAULT_BODY_LIMITS,
): (request: Request) => Promise<Record<string, unknown>> {
  const strictKeys = new Set(strict);
  return async (request) => {
    // ? The strict keys are the safety keys: a body over a limit still gets them applied.
    const { body, nonFinite, overLimit, textBound } = await readJsonObject(request, limits, strict);
    // ? Issue 14: compiled on the route's first body (compiledCheck keeps it), not when the
    // route is declared: the whole MetaMetricsUpdate was 13 ms of the path to the first 200
    // (CPU profile of start-up), for a check that no read needs. The first post pays it once.
    const check = compiledCheck(schema);
    if (overLimit !== undefined) overLimitByBody.set(body, overLimit);
    const failing = failingSections(check, body);
    if (failing !== null && failing.length === 0) {
      if (nonFinite.length > 0) coercedByBody.set(body, nonFinite);
      if (overLimit === undefined) boundByBody.set(body, textBound);
      return body;
    }
    const { coerced, refused } = coerce(check, body, strictKeys, failing ?? undefined);
    if (refused.length > 0)
      throw new UnprocessableError(`invalid body: ${describeProblems(refused, new Set(nonFinite))}`);
    coercedByBody.set(body, [...new Set([...nonFinite, ...coerced])]);
    if (overLimit === undefined) {
      let bound = textBound;
      for (const path of coerced) bound += coercedGrowth(path);
      boundByBody.set(body, bound);
    }
    return body;
  };
}

/**
 * The parse hooks of a route whose body `hook` reads (with readJsonObject): `hook`, then the
 * media type it reads.
 * ? The second entry never runs: Elysia tries it only when the hook before it returned
 * nothing, and `hook` returns a body or throws. It is there for @elysiajs/openapi, which
 * cannot see into a function hook and documents such a body as `content: {}`: no schema,
 * nothing for Swagger UI's "Try it out" to send (issue 9). Named, it documents the route's
 * body schema under application/json.
 */
export function jsonBodyHooks<T>(
  hook: (context: { request: Request }) => Promise<T>,
): [(context: { request: Request }) => Promise<T>, "application/json"] {
  return [hook, "application/json"];
}
