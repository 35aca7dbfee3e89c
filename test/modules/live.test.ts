// GET /events through app.handle: headers, the first snapshot, updates within the same
// stream after POSTs, Last-Event-ID resume over HTTP, and clean-up when the client goes.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { SnapshotEvent, UpdateEvent } from "../../src/modules/live/model";
import { MAX_SUBSCRIBERS_PER_CLIENT } from "../../src/telemetry/hub";
import { fixture, get, logged, post, served, startApp, waitFor } from "../helpers";

interface Event {
  id: string;
  event: string;
  data: Record<string, unknown>;
}

/** Reads SSE events from a response body as they come. */
function events(res: Response) {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  return {
    /** The next event with a data line (comments and retry lines are skipped). */
    async next(): Promise<Event> {
      for (;;) {
        const end = buffer.indexOf("\n\n");
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(
            block
              .split("\n")
              .filter((l) => !l.startsWith(":"))
              .map((l) => [l.slice(0, l.indexOf(": ")), l.slice(l.indexOf(": ") + 2)]),
          );
          if (fields.data !== undefined) {
            return { id: fields.id ?? "", event: fields.event ?? "message", data: JSON.parse(fields.data) };
          }
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("stream ended");
        buffer += decoder.decode(value, { stream: true });
      }
    },
    cancel: () => reader.cancel(),
  };
}

const errors = (schema: Parameters<typeof TypeCompiler.Compile>[0], value: unknown) => [
  ...TypeCompiler.Compile(schema).Errors(value),
];

describe("GET /events", () => {
  test("an event stream: a snapshot first, then one update per POST, live", async () => {
    await using t = await startApp();
    await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    const res = await t.app.handle(new Request("http://localhost/events"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-cache, no-transform");
    const stream = events(res);
    const snapshot = await stream.next();
    expect(snapshot.event).toBe("snapshot");
    expect(errors(SnapshotEvent, snapshot.data)).toEqual([]);
    // The same document GET /meta/metrics serves.
    expect(snapshot.data.doc).toEqual((await get(t.app, "/meta/metrics")).body);

    const paused = await post(t.app, "/meta/metrics", fixture("meta_metrics_paused_post"));
    const update = await stream.next();
    expect(errors(UpdateEvent, update.data)).toEqual([]);
    expect(update).toEqual({
      id: expect.stringMatching(/^[0-9a-z]+\.2$/),
      event: "update",
      data: { version: 2, updated_at: paused.body.timestamp, set: served(fixture("meta_metrics_paused_post")) },
    });
    await post(t.app, "/atlas/update", fixture("atlas_update_post"));
    expect((await stream.next()).data.set).toEqual({ atlas: fixture("atlas_update_post") });
    await stream.cancel();
  });

  test("Last-Event-ID resumes with exactly the missed updates, no snapshot", async () => {
    await using t = await startApp();
    await post(t.app, "/meta/metrics", { mode: "A" });
    const first = events(await t.app.handle(new Request("http://localhost/events")));
    const { id } = await first.next();
    await first.cancel();
    await post(t.app, "/meta/metrics", { mode: "B" });
    await post(t.app, "/meta/metrics", { mode: "C" });
    const again = events(
      await t.app.handle(new Request("http://localhost/events", { headers: { "last-event-id": id } })),
    );
    expect((await again.next()).data).toMatchObject({ version: 2, set: { mode: "B" } });
    expect((await again.next()).data).toMatchObject({ version: 3, set: { mode: "C" } });
    await again.cancel();
  });

  test("a Last-Event-ID from before a restart gets a snapshot of the restored state", async () => {
    await using t = await startApp();
    await post(t.app, "/meta/metrics", fixture("meta_metrics_paused_post"));
    const res = await t.app.handle(
      new Request("http://localhost/events", { headers: { "last-event-id": "previousboot.41" } }),
    );
    const first = await events(res).next();
    expect(first.event).toBe("snapshot");
    expect((first.data.doc as { guardian: { is_paused: boolean } }).guardian.is_paused).toBe(true);
  });

  test("the subscription ends when the client disconnects (abort) or cancels", async () => {
    await using t = await startApp();
    const controller = new AbortController();
    const res = await t.app.handle(new Request("http://localhost/events", { signal: controller.signal }));
    const other = await t.app.handle(new Request("http://localhost/events"));
    await events(res).next();
    expect(t.services.hub.stats().subscribers).toBe(2);
    controller.abort();
    await waitFor(() => t.services.hub.stats().subscribers === 1, "the aborted subscriber to go");
    await (other.body as ReadableStream).cancel();
    await waitFor(() => t.services.hub.stats().subscribers === 0, "the cancelled subscriber to go");
  });

  test(`one client gets ${MAX_SUBSCRIBERS_PER_CLIENT} streams, then 429 with Retry-After; another address still gets in; /status and the log say so`, async () => {
    let peer = "127.0.0.1";
    await using t = await startApp({ overrides: { clientAddress: () => peer } });
    const open: Response[] = [];
    // Loopback is one client whatever the address in 127.0.0.0/8.
    for (let i = 0; i < MAX_SUBSCRIBERS_PER_CLIENT; i++) {
      peer = `127.0.0.${1 + (i % 5)}`;
      open.push(await t.app.handle(new Request("http://localhost/events")));
    }
    expect(open.map((r) => r.status)).toEqual(Array(MAX_SUBSCRIBERS_PER_CLIENT).fill(200));
    peer = "127.9.9.9";
    const refused = await t.app.handle(new Request("http://localhost/events"));
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(await refused.json()).toEqual({
      error: `too many live streams from this client (${MAX_SUBSCRIBERS_PER_CLIENT}); close one or retry later`,
      code: 429,
    });
    peer = "10.1.2.3";
    const other = await t.app.handle(new Request("http://localhost/events"));
    expect(other.status).toBe(200);
    expect((await get(t.app, "/status")).body.live).toMatchObject({
      subscribers: MAX_SUBSCRIBERS_PER_CLIENT + 1,
      clients: 2,
      max_subscribers_per_client: MAX_SUBSCRIBERS_PER_CLIENT,
      refused_client_limit: 1,
    });
    expect(logged(t.log, "live stream refused")).toEqual([
      expect.objectContaining({
        client: "loopback",
        held: MAX_SUBSCRIBERS_PER_CLIENT,
        limit: MAX_SUBSCRIBERS_PER_CLIENT,
      }),
    ]);
    for (const r of [...open, other]) await (r.body as ReadableStream).cancel();
  });

  test("shutdown ends open streams, so a graceful stop is not held up by viewers", async () => {
    const t = await startApp();
    const stream = events(await t.app.handle(new Request("http://localhost/events")));
    await stream.next();
    await t[Symbol.asyncDispose]();
    await expect(stream.next()).rejects.toThrow("stream ended");
  });

  test("documented in the OpenAPI document as text/event-stream", async () => {
    await using t = await startApp();
    const doc = (await get(t.app, "/swagger/json")).body as {
      paths: Record<string, { get: { responses: Record<string, { content: Record<string, unknown> }> } }>;
    };
    expect(Object.keys(doc.paths["/events"]?.get.responses["200"]?.content ?? {})).toEqual(["text/event-stream"]);
    expect(doc.paths["/meta/history"]?.get.responses["200"]).toBeDefined();
  });
});

describe("the guardian in the stream (issue 11)", () => {
  test("updates carry the served guardian: a pause file's pause wins over the hive's post; its sources never", async () => {
    await using t = await startApp();
    const res = await t.app.handle(new Request("http://localhost/events"));
    const stream = events(res);
    expect((await stream.next()).event).toBe("snapshot");
    writeFileSync(join(t.home, "state", "guardian_pause.json"), JSON.stringify({ paused: true, reason: "cooldown" }));
    const paused = await stream.next();
    expect(paused.data.set).toEqual({
      guardian: {
        is_paused: true,
        drawdown: 0,
        reason: "cooldown",
        paused_by: "pause_file",
        paused_since: expect.any(String),
      },
    });
    const running = { is_paused: false, drawdown: 4, reason: "Normal operation" };
    expect((await post(t.app, "/meta/metrics", { guardian: running, mode: "LIVE_MODE" })).status).toBe(200);
    const update = await stream.next();
    expect(errors(UpdateEvent, update.data)).toEqual([]);
    expect(update.data.set).toEqual({
      guardian: {
        ...running,
        is_paused: true,
        reason: "cooldown",
        paused_by: "pause_file",
        paused_since: expect.any(String),
      },
      mode: "LIVE_MODE",
    });
    await stream.cancel();
  });
});
