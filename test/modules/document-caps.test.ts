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
