// Seeded fuzz of the write routes through app.handle: the fixtures mutated structurally
// (types flipped, keys deleted and inserted, deep nesting, extreme numbers, odd unicode)
// and as text (truncated, random bytes, repeated keys, out-of-range literals). After every
// case: no 5xx, the served safety keys (guardian, breakers, mode) validate against their
// schemas, guardian.is_paused is a boolean, and the document equals the merge of exactly the
// bodies that were answered 200, with null at the paths their answers listed as coerced
// (issue 15: outside the safety keys a bad value is stored as null, no longer refused).
// A failure prints the seed; NEOLIGHT_FUZZ_SEED=<seed> replays the same cases.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { SafetyFields } from "../../src/modules/meta/model";
import { fixture, type Json, startApp } from "../helpers";

const CASES = Number(process.env.NEOLIGHT_FUZZ_CASES ?? 10_000);
const SEED = Number(process.env.NEOLIGHT_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
const ALLOWED = new Set([200, 400, 413, 415, 422]);

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  return { next, int, pick };
}
type Rng = ReturnType<typeof prng>;

const STRINGS = [
  "",
  "x".repeat(70),
  "\u0000",
  "\ud800",
  "\udfff\ud800",
  "\u2028\u2029",
  "🚀📉",
  "\u202eSPAUSED",
  "CLOSED",
  "OPEN",
  "HALF_OPEN",
  "BULL",
  "é",
  '"},{"',
  "\\",
  "</script><script>alert(1)</script>",
];
const NUMBERS = [0, -0, 1, -1, 0.5, 1e308, -1e308, 5e-324, 2 ** 53 + 1, 1e21, -2147483649, 0.1 + 0.2];
const KEYS = [
  "__proto__",
  "constructor",
  "prototype",
  "cache_timestamp",
  "is_paused",
  "guardian",
  "per_agent",
  "",
  "🔑",
  "a\nb",
  "k".repeat(300),
  "toString",
  "hasOwnProperty",
  "valueOf",
];

function randomValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 2 ? 4 : 6)) {
    case 0:
      return rng.pick(STRINGS);
    case 1:
      return rng.pick(NUMBERS);
    case 2:
      return rng.pick([true, false, null]);
    case 3:
      return rng.pick([{}, [], [null], { is_paused: "true" }]);
    case 4:
      return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth + 1));
    default: {
      const obj: Json = {};
      for (let i = rng.int(4); i > 0; i--) {
        Object.defineProperty(obj, rng.pick(KEYS), {
          value: randomValue(rng, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return obj;
    }
  }
}

/** Every container inside `root` with its keys, to pick a mutation site from. */
function containers(root: unknown): (Json | unknown[])[] {
  const out: (Json | unknown[])[] = [];
  const walk = (v: unknown) => {
    if (typeof v !== "object" || v === null) return;
    out.push(v as Json);
    for (const child of Object.values(v)) walk(child);
  };
  walk(root);
  return out;
}

function setOwn(target: Json | unknown[], key: string | number, value: unknown) {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Sets null at a `coerced` path ("per_agent/a~1b/pnl_1d", JSON-pointer escaped) of `root`. */
function setNullAt(root: Json, path: string): void {
  const keys = path.split("/").map((k) => k.replaceAll("~1", "/").replaceAll("~0", "~"));
  let at = root;
  for (const key of keys.slice(0, -1)) at = at[key] as Json;
  setOwn(at, keys[keys.length - 1] as string, null);
}

/** One structural mutation of `doc` (in place). */
function mutate(rng: Rng, doc: Json): void {
  const sites = containers(doc);
  const site = rng.pick(sites);
  const keys = Object.keys(site);
  const key = keys.length > 0 ? rng.pick(keys) : undefined;
  switch (rng.int(6)) {
    case 0: // flip a type
      if (key !== undefined) setOwn(site, key, randomValue(rng));
      break;
    case 1: // delete a key
      if (key !== undefined && !Array.isArray(site)) delete (site as Json)[key];
      break;
    case 2: // insert a key
      if (!Array.isArray(site)) setOwn(site, rng.pick(KEYS), randomValue(rng));
      break;
    case 3: {
      // deep nesting, sometimes past the limit
      if (key === undefined) break;
      let v: unknown = (site as Json)[key];
      for (let i = rng.int(45); i > 0; i--) v = rng.next() < 0.5 ? { a: v } : [v];
      setOwn(site, key, v);
      break;
    }
    case 4: // an extreme number
      if (key !== undefined) setOwn(site, key, rng.pick(NUMBERS));
      break;
    default: // odd unicode
      if (key !== undefined) setOwn(site, key, rng.pick(STRINGS) + rng.pick(STRINGS));
  }
}

/** One textual mutation of valid JSON `text`. */
function mutateText(rng: Rng, text: string): string | Uint8Array<ArrayBuffer> {
  switch (rng.int(5)) {
    case 0: // truncated
      return text.slice(0, rng.int(text.length));
    case 1: {
      // random bytes, possibly invalid UTF-8
      const bytes = new Uint8Array(new TextEncoder().encode(text));
      for (let i = 1 + rng.int(4); i > 0; i--) bytes[rng.int(bytes.length)] = rng.int(256);
      return bytes;
    }
    case 2: {
      // a repeated key right after an opening brace
      const at = text.indexOf("{", rng.int(text.length));
      if (at === -1) return text;
      const key = rng.pick(["mode", "guardian", "is_paused", "a"]);
      const after = text.slice(at + 1);
      return `${text.slice(0, at + 1)}"${key}": 1, "${key}": 2${after.trimStart().startsWith("}") ? "" : ","}${after}`;
    }
    case 3: // a number literal no double can hold, or a token Python's json writes for one
      return text.replace(/-?\d+(\.\d+)?(?=[,}\]])/, rng.pick(["1e400", "-1e999", "1e-400", "NaN", "-Infinity"]));
    default: // odd whitespace, a BOM, or trailing garbage
      return rng.pick([`\ufeff${text}`, `${text}\n\n`, `${text}x`, ` \t${text}`]);
  }
}

describe("fuzz: write routes", () => {
  test(`${CASES} mutated bodies: never a 5xx, the served document always valid and exact (seed ${SEED})`, async () => {
    // The store fsyncs every batch: on tmpfs that is microseconds, not milliseconds.
    const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
    const home = mkdtempSync(join(base, "neolight-fuzz-"));
    try {
      await using t = await startApp({ home });
      const rng = prng(SEED);
      // The safety keys as the router reads them; everything else may hold coerced nulls.
      const check = TypeCompiler.Compile(SafetyFields);
      let coercedAnswers = 0;
      const sources: [string, Json][] = [
        ["/meta/metrics", fixture("meta_metrics_post")],
        ["/meta/metrics", fixture("meta_metrics_paused_post")],
        ["/meta/metrics", fixture("stress_post")],
        ["/atlas/update", fixture("atlas_update_post")],
      ];
      /** What the document must be: the merge of every body answered 200, in order. */
      const model: Json = {};
      const statuses = new Map<number, number>();
      for (let i = 0; i < CASES; i++) {
        const [route, source] = rng.pick(sources);
        const doc = structuredClone(source);
        for (let m = 1 + rng.int(3); m > 0; m--) mutate(rng, doc);
        let text = JSON.stringify(doc);
        let body: string | Uint8Array<ArrayBuffer> = text;
        if (rng.next() < 0.3) body = mutateText(rng, text);
        const contentType =
          rng.next() < 0.03 ? rng.pick([null, "text/plain", "application/x-ndjson"]) : "application/json";
        const headers: Record<string, string> = contentType === null ? {} : { "content-type": contentType };
        try {
          const res = await t.app.handle(new Request(`http://localhost${route}`, { method: "POST", body, headers }));
          const answer = (await res.json()) as Json;
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          expect(ALLOWED.has(res.status) ? "allowed" : `status ${res.status}: ${JSON.stringify(answer)}`).toBe(
            "allowed",
          );
          if (res.status === 200) {
            text = typeof body === "string" ? body : new TextDecoder().decode(body);
            // The service reads a NaN or -Infinity token as null (listed in coerced): so does the model.
            const json = text.replace(/^\ufeff/, "").replace(/(?<=[:,[]\s*)(NaN|-Infinity)(?=[,}\]])/, "null");
            const accepted = JSON.parse(json) as Json;
            const coerced = (answer.coerced as string[] | undefined) ?? [];
            if (coerced.length > 0) coercedAnswers++;
            for (const path of coerced) setNullAt(accepted, path);
            if (route === "/atlas/update") model.atlas = accepted;
            else for (const key of Object.keys(accepted)) setOwn(model, key, accepted[key]);
          } else {
            expect(answer).toEqual({ error: expect.any(String), code: res.status });
          }
          const served = (await (await t.app.handle(new Request("http://localhost/meta/metrics"))).json()) as Json;
          expect(
            check.Check(served) ? [] : [...check.Errors(served)].slice(0, 3).map((e) => `${e.path}: ${e.message}`),
          ).toEqual([]);
          expect(typeof (served.guardian as { is_paused: unknown }).is_paused).toBe("boolean");
          const { cache_timestamp: _stamp, ...rest } = served;
          // ? The served guardian says who paused it and since when (issue 11): set by the service.
          const own = (key: string, doc: Json) => {
            if (key !== "guardian") return doc[key];
            const { paused_by: _by, paused_since: _since, until: _until, ...reported } = doc[key] as Json;
            return reported;
          };
          const guardian = served.guardian as Json;
          expect(guardian.paused_by).toBe(guardian.is_paused === true ? "hive" : null);
          for (const key of Object.keys(model)) {
            expect({ key, value: own(key, rest) }).toEqual({ key, value: own(key, model) });
          }
        } catch (err) {
          const preview = typeof body === "string" ? body.slice(0, 300) : `${body.byteLength} bytes`;
          throw new Error(
            `fuzz case ${i} failed; replay with NEOLIGHT_FUZZ_SEED=${SEED}\n${route} ${preview}\n${(err as Error).message}`,
          );
        }
      }
      // The mutations reach every kind of answer, not just one.
      for (const status of [200, 400, 422]) expect(statuses.get(status) ?? 0).toBeGreaterThan(CASES / 50);
      expect(coercedAnswers).toBeGreaterThan(CASES / 50);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }, 60_000);
});
