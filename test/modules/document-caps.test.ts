// Issue 15 item 7: the document's size caps (MAX_DOCUMENT_KEYS, MAX_DOCUMENT_BYTES), that a
// pause is never refused for size, and that the served bytes are cached whatever it holds.
import { describe, expect, test } from "bun:test";
import { MAX_DOCUMENT_BYTES, MAX_DOCUMENT_KEYS } from "../../src/modules/meta/service";
import { fixture, get, post, servedGuardian, startApp } from "../helpers";

const PAUSED = { is_paused: true, drawdown: 0.12, reason: "drawdown 12%" };

function manyKeys(n: number, prefix: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) out[`${prefix}${i}`] = i;
  return out;
}

describe("document caps", () => {
  test("a new key beyond MAX_DOCUMENT_KEYS gets 413 naming the limit; existing keys are still replaced", async () => {
    await using t = await startApp();
    expect((await post(t.app, "/meta/metrics", manyKeys(MAX_DOCUMENT_KEYS - 1, "k"))).status).toBe(200);
    const res = await post(t.app, "/meta/metrics", { extra1: 1, extra2: 2 });
    expect(res.status).toBe(413);
    expect(res.body).toEqual({
      error: `document key limit reached: ${MAX_DOCUMENT_KEYS - 1} top-level keys stored, this update adds 2, at most ${MAX_DOCUMENT_KEYS} (raise NEOLIGHT_MAX_DOCUMENT_KEYS, --max-document-keys); nothing else of this update was stored`,
      code: 413,
    });
    expect((await get(t.app, "/meta/metrics")).body.extra1).toBeUndefined();
    expect((await post(t.app, "/meta/metrics", { k0: "again" })).status).toBe(200);
    expect((await post(t.app, "/meta/metrics", { extra1: 1 })).status).toBe(200);
    const status = (await get(t.app, "/status")).body.queue as Record<string, number>;
    expect(status).toMatchObject({
      rejected_too_large: 1,
      document_keys: MAX_DOCUMENT_KEYS,
      max_document_keys: MAX_DOCUMENT_KEYS,
      max_document_bytes: MAX_DOCUMENT_BYTES,
    });
  });

  test("growth beyond MAX_DOCUMENT_BYTES gets 413; a body's guardian is applied all the same", async () => {
    await using t = await startApp();
    const chunk = "x".repeat(400 * 1024);
    let i = 0;
    while (
      (((await get(t.app, "/status")).body.queue as Record<string, number>).document_bytes ?? 0) + 2 * chunk.length <
      MAX_DOCUMENT_BYTES
    ) {
      expect((await post(t.app, "/meta/metrics", { [`blob${i++}`]: chunk })).status).toBe(200);
    }
    const hive = fixture("meta_metrics_post");
    const res = await post(t.app, "/meta/metrics", { ...hive, guardian: PAUSED, big1: chunk, big2: chunk });
    expect(res.status).toBe(413);
    expect(res.body.error).toContain("document size limit reached");
    expect(res.body.error).toContain("but its guardian, breakers, mode were applied");
    const doc = (await get(t.app, "/meta/metrics")).body;
    expect(doc.guardian).toEqual(servedGuardian(PAUSED));
    expect(doc.big1).toBeUndefined();
    expect(doc.per_agent).toEqual({}); // the default: the hive's agents were not stored
    // A guardian-only update is never refused, even with the document full.
    expect((await post(t.app, "/meta/metrics", { guardian: { ...PAUSED, reason: "still" } })).status).toBe(200);
  });

  // Issue 16: the byte cap is judged on a bound from the body's text (jsonTextBound) and
  // measured exactly only near the cap. The answer must be the exact one either way.
  describe("judged on the body's text, answered as if measured", () => {
    const ONE_MB = { NEOLIGHT_MAX_DOCUMENT_MB: "1" };
    const blob = (bytes: number) => "x".repeat(bytes);
    /** What the cap counts for `doc`'s keys: each key and value as JSON, with its colon and comma. */
    const stored = (doc: Record<string, unknown>) =>
      Object.entries(doc).reduce((n, [k, v]) => n + Buffer.byteLength(JSON.stringify(k) + JSON.stringify(v)) + 2, 0);
    const queue = async (t: Awaited<ReturnType<typeof startApp>>) =>
      (await get(t.app, "/status")).body.queue as Record<string, number>;

    test("numbers written longer than they were sent (1e20) count as written", async () => {
      await using t = await startApp({ env: ONE_MB });
      expect((await post(t.app, "/meta/metrics", { blob: blob(500_000) })).status).toBe(200);
      // 200 KB of text, 880 KB as JSON: 1.38 MB stored, over the 1 MiB cap.
      const numbers = `{"numbers":[${Array(40_000).fill("1e20").join(",")}]}`;
      const res = await post(t.app, "/meta/metrics", numbers);
      expect(res.status).toBe(413);
      expect(res.body.error).toStartWith("document size limit reached: 500010 bytes stored, this update adds 880012");
      expect((await queue(t)).document_bytes).toBe(500_010);
    });

    test("values stored as null count with their null", async () => {
      await using t = await startApp({ env: { ...ONE_MB, NEOLIGHT_MAX_BODY_KEYS: "100000" } });
      // Every figure a string: each is stored as null, 2 bytes longer than its "".
      const figures = ["pnl_1d", "pnl_7d", "sharpe_30d", "winrate_30d", "max_dd_30d", "revenue_24h", "revenue_total"];
      const agents = Object.fromEntries(
        Array.from({ length: 6000 }, (_, i) => [`a${i}`, Object.fromEntries(figures.map((f) => [f, ""]))]),
      );
      const text = JSON.stringify({ per_agent: agents });
      const growth = 2 * 6000 * figures.length;
      // What is stored first leaves room for the text, but not for what it becomes.
      const first = 1024 * 1024 - Buffer.byteLength(text) - growth / 2;
      expect((await post(t.app, "/meta/metrics", { blob: blob(first) })).status).toBe(200);
      const res = await post(t.app, "/meta/metrics", text);
      expect(res.status).toBe(413);
      expect(res.body.error).toStartWith(
        `document size limit reached: ${first + 10} bytes stored, this update adds ${Buffer.byteLength(text) - 1 + growth}`,
      );
    });

    test("a text over the cap whose JSON fits is stored; /status counts its JSON, not its text", async () => {
      await using t = await startApp({ env: ONE_MB });
      expect((await post(t.app, "/meta/metrics", { blob: blob(600_000) })).status).toBe(200);
      // 700 KB of text, nearly all whitespace: 100 KB as JSON.
      const padded = { pad: blob(100_000), list: [1, 2, 3] };
      const text = JSON.stringify(padded, null, 1).replace("{", `{${" ".repeat(600_000)}`);
      expect(text.length).toBeGreaterThan(700_000);
      expect((await post(t.app, "/meta/metrics", text)).status).toBe(200);
      expect((await get(t.app, "/meta/metrics")).body.pad).toBe(padded.pad);
      expect((await queue(t)).document_bytes).toBe(stored({ blob: blob(600_000), ...padded }));
    });

    test("replacing keys many times keeps the document's bytes exact", async () => {
      await using t = await startApp({ env: ONE_MB });
      const hive = fixture("meta_metrics_post");
      const bodies = Array.from({ length: 20 }, (_, i) => ({
        ...hive,
        mode: i % 2 === 0 ? "TEST_MODE" : "PAPER_TRADING_MODE",
        [`k${i % 3}`]: blob(1000 * i),
      }));
      // Sent at once: accepted in this order, many in one batch.
      for (const res of await Promise.all(bodies.map((b) => post(t.app, "/meta/metrics", b)))) {
        expect(res.status).toBe(200);
      }
      // ? What was accepted, as the caps count it (the store's guardian is resolved from its sources).
      expect((await queue(t)).document_bytes).toBe(stored(Object.assign({}, ...bodies)));
    });
  });

  test("a document without `timestamp` is rendered once per version; the default's timestamp is still now", async () => {
    await using t = await startApp();
    const { meta } = t.services;
    expect((await post(t.app, "/meta/metrics", { stress_last: { ok: true } })).status).toBe(200);
    const first = JSON.parse(meta.documentJson());
    const clock = Date.now();
    const stringify = JSON.stringify;
    let calls = 0;
    JSON.stringify = ((...args: Parameters<typeof stringify>) => {
      calls++;
      return stringify(...args);
    }) as typeof stringify;
    let again: Record<string, unknown>;
    try {
      again = JSON.parse(meta.documentJson());
    } finally {
      JSON.stringify = stringify;
    }
    expect(calls).toBeLessThanOrEqual(1);
    expect(Date.parse(again.timestamp as string)).toBeGreaterThanOrEqual(clock);
    expect({ ...again, timestamp: null }).toEqual({ ...first, timestamp: null });
  });
});
