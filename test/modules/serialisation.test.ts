// Issue 16 item 6: one serialisation per commit. Each commit turned the whole document into
// JSON text for the file, the live stream's frame (even with no viewer), the GET's cache,
// and the size caps on the request path. Now each value's text is made once and shared.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { hiveSnapshot } from "../../bench/history-fill";
import { get, post, startApp } from "../helpers";

/** Characters of JSON text JSON.stringify made while `run` ran. */
async function stringified(run: () => Promise<void>): Promise<number> {
  const stringify = JSON.stringify;
  let chars = 0;
  JSON.stringify = ((...args: Parameters<typeof stringify>) => {
    const out = stringify(...args);
    chars += out?.length ?? 0;
    return out;
  }) as typeof stringify;
  try {
    await run();
  } finally {
    JSON.stringify = stringify;
  }
  return chars;
}

describe("one serialisation per commit", () => {
  test.each([
    ["with a live viewer", true],
    ["with nobody listening", false],
  ])(
    "a 300-agent snapshot is turned into JSON text once: file, GET and stream share it (%s)",
    async (_name, viewer) => {
      await using t = await startApp();
      const body = hiveSnapshot(300, 1);
      const text = JSON.stringify(body);
      const size = text.length;
      const sub = viewer ? t.services.hub.subscribe() : null;
      let served = "";
      const chars = await stringified(async () => {
        expect((await post(t.app, "/meta/metrics", text)).status).toBe(200);
        served = JSON.stringify((await get(t.app, "/meta/metrics")).body);
      });
      // The answer of the GET is parsed and written again by this test: not the service's.
      const own = served.length;
      // Before: file + caps + GET + frame, four times the body (three without a viewer).
      expect(chars - own).toBeLessThan(size * 1.25);
      // What was shared is what each of them holds.
      const file = JSON.parse(readFileSync(t.config.metricsPath, "utf8"));
      expect(file.per_agent).toEqual(body.per_agent);
      expect(JSON.parse(served).per_agent).toEqual(body.per_agent);
      if (sub !== null) {
        await sub.next(); // retry
        await sub.next(); // snapshot
        const frame = new TextDecoder().decode((await sub.next()).value);
        expect(JSON.parse(frame.split("\ndata: ")[1] as string).set.per_agent).toEqual(body.per_agent);
        sub.close();
      }
    },
  );

  test("a viewer resuming from before a commit nobody watched gets that update, made then", async () => {
    await using t = await startApp();
    const first = t.services.hub.subscribe();
    await first.next();
    const snapshot = new TextDecoder().decode((await first.next()).value);
    const id = (snapshot.match(/^id: (\S+)$/m) as RegExpMatchArray)[1] as string;
    first.close();
    expect((await post(t.app, "/meta/metrics", { mode: "LIVE" })).status).toBe(200);
    const again = t.services.hub.subscribe(id);
    await again.next();
    const frame = new TextDecoder().decode((await again.next()).value);
    expect(frame).toStartWith("id: ");
    expect(frame).toContain("event: update\n");
    expect(JSON.parse(frame.split("\ndata: ")[1] as string)).toMatchObject({ set: { mode: "LIVE" } });
    again.close();
  });
});
