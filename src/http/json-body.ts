// Reading a JSON-object request body with limits, for every write route.
// Why not Elysia's default parser: it answers invalid JSON with its own shape and has no
// size, depth or key-count limits; a writer that gates trading needs all of those.
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from "./errors";

/** Largest accepted body. The hive snapshot is ~3 KiB; 1 MiB leaves room for growth. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Deepest accepted nesting. The contract's deepest path is 4 levels. */
export const MAX_DEPTH = 32;
/** Most keys + array items in one body: bounds the work of validating and storing it. */
export const MAX_NODES = 50_000;

const utf8 = new TextDecoder("utf-8", { fatal: true });

function isJsonType(contentType: string | null): boolean {
  if (contentType === null) return false;
  const type = (contentType.split(";")[0] as string).trim().toLowerCase();
  return type === "application/json" || (type.startsWith("application/") && type.endsWith("+json"));
}

/** Throws BadRequestError when `value` nests deeper than MAX_DEPTH or holds more than MAX_NODES. */
function checkShape(root: unknown): void {
  let nodes = 0;
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (typeof value !== "object" || value === null) continue;
    if (depth > MAX_DEPTH) throw new BadRequestError(`body nests deeper than ${MAX_DEPTH} levels`);
    const children = Array.isArray(value) ? value : Object.values(value);
    nodes += children.length;
    if (nodes > MAX_NODES) throw new BadRequestError(`body holds more than ${MAX_NODES} keys and items`);
    for (const child of children) stack.push([child, depth + 1]);
  }
}

/**
 * Reads `request`'s body as one JSON object. Throws 415 for a non-JSON content type, 413
 * over MAX_BODY_BYTES, 400 for invalid UTF-8, invalid JSON, a non-object, or limits.
 */
export async function readJsonObject(request: Request): Promise<Record<string, unknown>> {
  const contentType = request.headers.get("content-type");
  if (!isJsonType(contentType)) throw new UnsupportedMediaTypeError(contentType);
  const length = request.headers.get("content-length");
  if (length !== null && Number(length) > MAX_BODY_BYTES) throw new PayloadTooLargeError(MAX_BODY_BYTES);
  // ? With a declared length the server already bounds the body: read it in one go (the
  // hot path). Without one (chunked) count bytes as they come and stop at the limit.
  const bytes =
    length !== null ? new Uint8Array(await request.arrayBuffer()) : await readLimited(request, MAX_BODY_BYTES);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new BadRequestError("request body is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BadRequestError(`request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new BadRequestError(
      `request body must be a JSON object, got ${Array.isArray(value) ? "an array" : typeof value === "object" ? "null" : `a ${typeof value}`}`,
    );
  }
  checkShape(value);
  return value as Record<string, unknown>;
}

/** Reads at most `limit` bytes; a chunked body that grows past it is cut off with 413. */
async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
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
      throw new PayloadTooLargeError(limit);
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
