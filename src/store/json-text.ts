// JSON text of the document, made once per value. Issue 16: each commit turned the whole
// document into JSON three times (the file, the SSE frame, the GET cache), and the size
// caps a fourth time on the request path. A committed value is never mutated (the store's
// rule: DocumentUpdate.set is owned by the store once committed), so the text of each
// top-level value is made once, the first time anyone needs it, and shared by every writer
// of an object holding it: the file and the served document differ only in the keys
// around the values (defaults, cache_timestamp), and those are cheap.

/** The text of each object value seen, for as long as the value lives. */
const texts = new WeakMap<object, string>();

/**
 * `JSON.stringify(value)`, made once per object: the caller promises that `value` (an
 * object or array) is not mutated afterwards. `undefined` (which JSON cannot hold) is null.
 */
export function valueJson(value: unknown): string {
  if (typeof value !== "object" || value === null) return JSON.stringify(value) ?? "null";
  let text = texts.get(value);
  if (text === undefined) {
    text = JSON.stringify(value);
    texts.set(value, text);
  }
  return text;
}

/**
 * `JSON.stringify(object)`, byte for byte (same key order), from its values' valueJson():
 * only the keys are written anew. Keys whose value is undefined are left out, as
 * JSON.stringify leaves them.
 */
export function objectJson(object: Readonly<Record<string, unknown>>): string {
  let out = "{";
  for (const key of Object.keys(object)) {
    const value = object[key];
    if (value === undefined) continue;
    if (out.length > 1) out += ",";
    out += `${JSON.stringify(key)}:${valueJson(value)}`;
  }
  return `${out}}`;
}

/**
 * About the length of objectJson(object), from its values' texts (made if they were not):
 * what a frame of it would hold, without writing it.
 */
export function jsonLength(object: Readonly<Record<string, unknown>>): number {
  let n = 2;
  for (const key of Object.keys(object)) n += key.length + 4 + valueJson(object[key]).length;
  return n;
}
