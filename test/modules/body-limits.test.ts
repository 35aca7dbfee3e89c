// Issue 16 item 5: the body limits scale with the deployment. At ~2,930 agents the hive's
// snapshot broke the 50,000-key (or 1 MiB) limit and was refused whole, its guardian
// included. Now both limits are options, the refusal names the limit and the option that
// raises it, and a body over a limit still has its guardian, breakers and mode applied.
import { describe, expect, test } from "bun:test";
import { hiveSnapshot } from "../../bench/history-fill";
import { OPTIONS } from "../../src/config";
import { MAX_BODY_BYTES, SAFETY_READ_FACTOR } from "../../src/http/json-body";
import { get, logged, post, servedGuardian, startApp } from "../helpers";

const PAUSED = { is_paused: true, drawdown: 7.5, reason: "drawdown limit" };
const BREAKERS = { quote_state: "OPEN", trade_state: "HALF_OPEN" };
/** The hive's snapshot with `agents` agents (and as many strategies), paused. */
const hive = (agents: number) => ({ ...hiveSnapshot(agents, 1), guardian: PAUSED, breakers: BREAKERS, mode: "LIVE" });

describe("body limits", () => {
  test("a 3,000-agent snapshot over the key limit: 400 naming the option, its guardian, breakers and mode applied", async () => {
    await using t = await startApp();
    const res = await post(t.app, "/meta/metrics", hive(3000));
    expect(res.status).toBe(400);
    const error = res.body.error as string;
    expect(error).toStartWith("body holds more than 50000 keys and items");
    expect(error).toContain(OPTIONS.maxBodyKeys.env);
    expect(error).toMatch(
      /nothing else of this update was stored, but its guardian, breakers, mode were applied \(seq 1\)$/,
    );
    const doc = (await get(t.app, "/meta/metrics")).body;
    expect({ guardian: doc.guardian, breakers: doc.breakers, mode: doc.mode }).toEqual({
      guardian: servedGuardian(PAUSED),
      breakers: BREAKERS,
      mode: "LIVE",
    });
    // The agents were not stored: a 200 would have said they were.
    expect(doc.per_agent).toEqual({});
    expect(((await get(t.app, "/status")).body.queue as Record<string, number>).rejected_too_large).toBe(1);
    expect(logged(t.log, "update over a size limit, only its safety keys applied")).toEqual([
      expect.objectContaining({ level: "WARN", applied: ["guardian", "breakers", "mode"], seq: 1, refused: 1 }),
    ]);
  });

  test("over the byte limit: 413 naming the option, the guardian applied", async () => {
    await using t = await startApp();
    const body = { ...hive(3), padding: "x".repeat(MAX_BODY_BYTES) };
    const res = await post(t.app, "/meta/metrics", body);
    expect(res.status).toBe(413);
    expect(res.body.error).toStartWith(`request body is larger than ${MAX_BODY_BYTES} bytes`);
    expect(res.body.error).toContain(OPTIONS.maxBodyMb.env);
    expect(res.body.error).toContain("but its guardian, breakers, mode were applied");
    expect((await get(t.app, "/meta/metrics")).body.guardian).toEqual(servedGuardian(PAUSED));
  });

  test("a body over the limit without safety keys, or beyond the safety read, changes nothing", async () => {
    await using t = await startApp({ env: { NEOLIGHT_MAX_BODY_KEYS: "100" } });
    const { guardian: _g, breakers: _b, mode: _m, ...agentsOnly } = hive(10);
    const res = await post(t.app, "/meta/metrics", agentsOnly);
    expect(res.body).toEqual({
      error:
        "body holds more than 100 keys and items (the body key limit: raise NEOLIGHT_MAX_BODY_KEYS (--max-body-keys))",
      code: 400,
    });
    const beyond = await post(t.app, "/meta/metrics", hive(SAFETY_READ_FACTOR * 10));
    expect(beyond.status).toBe(400);
    expect(beyond.body.error).not.toContain("applied");
    // The atlas route has no safety key: over the limit it is refused whole.
    const atlas = await post(t.app, "/atlas/update", { weights: hiveSnapshot(20, 1).per_agent });
    expect(atlas.status).toBe(400);
    const doc = (await get(t.app, "/meta/metrics")).body;
    expect([(doc.guardian as { is_paused: boolean }).is_paused, doc.per_agent, doc.atlas]).toEqual([
      false,
      {},
      undefined,
    ]);
  });

  test("raised limits take the whole 3,000-agent snapshot: 200, every agent stored", async () => {
    await using t = await startApp({ env: { NEOLIGHT_MAX_BODY_KEYS: "200000", NEOLIGHT_MAX_BODY_MB: "4" } });
    const res = await post(t.app, "/meta/metrics", hive(3000));
    expect(res.status).toBe(200);
    expect(Object.keys((await get(t.app, "/meta/metrics")).body.per_agent as object)).toHaveLength(3000);
  });

  test("the document caps are options too, and their 413 names them", async () => {
    await using t = await startApp({ env: { NEOLIGHT_MAX_DOCUMENT_KEYS: "3" } });
    expect((await post(t.app, "/meta/metrics", { a: 1, b: 2, c: 3 })).status).toBe(200);
    const res = await post(t.app, "/meta/metrics", { d: 4, guardian: PAUSED });
    expect(res.body).toEqual({
      error:
        "document key limit reached: 3 top-level keys stored, this update adds 1, at most 3 (raise NEOLIGHT_MAX_DOCUMENT_KEYS, --max-document-keys); nothing else of this update was stored, but its guardian were applied (seq 2)",
      code: 413,
    });
    expect((await get(t.app, "/status")).body.queue).toMatchObject({ max_document_keys: 3 });
  });
});
