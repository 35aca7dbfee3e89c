// Log lines quote user input safely: hostile paths, keys, values and user agents that go
// through the real service into the real log file cannot break a line, forge a line, or add
// a field. The file is read back and every line must be one JSON object we wrote.
import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../src/app";
import { createLogger } from "../../src/log/logger";
import { startServices } from "../../src/services";
import { call, tempDir, testConfig } from "../helpers";

const FORGED = '{"timestamp":"2025-01-01T00:00:00Z","level":"ERROR","message":"forged"}';

describe("hostile input in the log", () => {
  test("CR/LF and fake JSON in paths, keys, values and user agents stay inside their strings", async () => {
    using home = tempDir();
    const config = testConfig(home.path, { LOG_LEVEL: "DEBUG" });
    mkdirSync(join(home.path, "state"));
    const log = createLogger({ level: "DEBUG", path: join(home.path, "service.log"), stdout: false });
    // A remote client, so that refusals are logged with the user agent.
    let peer = "127.0.0.1";
    const services = await startServices(config, log, { clientAddress: () => peer });
    const app = createApp(services);
    const hostileKey = `x\r\n${FORGED}\n`;
    let requests = 0;
    const send = async (...args: Parameters<typeof call> extends [unknown, ...infer R] ? R : never) => {
      requests++;
      return call(app, ...args);
    };

    // Accepted: "Telemetry processed" logs the posted keys.
    expect((await send("POST", "/meta/metrics", { [hostileKey]: FORGED, "a\u2028b": 1 })).status).toBe(200);
    // Refused by the schema: the 422 message quotes the key back to the client (not logged).
    expect((await send("POST", "/meta/metrics", { guardian: { [hostileKey]: 1 } })).status).toBe(422);
    // Unknown routes: the path is logged. Encoded and raw quotes, braces and line breaks.
    expect((await send("GET", `/x%0D%0A${encodeURIComponent(FORGED)}`)).status).toBe(404);
    expect((await send("GET", '/x"},{"level":"ERROR","message":"forged')).status).toBe(404);
    // Refused writes log the user agent (HTTP itself forbids CR/LF there; quotes it allows).
    peer = "10.9.8.7";
    const ua = `evil","level":"ERROR","message":"forged","x":"${"\\"}`;
    expect((await send("POST", "/meta/metrics", { mode: "X" }, { "user-agent": ua })).status).toBe(403);
    // The logger itself, called with raw CR/LF (a future caller passing unescaped input).
    log.access(`GET\r\n${FORGED}`, `/p\r\n${FORGED}`, 200);
    log.warn("request refused", { user_agent: `\r\n${FORGED}\r\n`, [`k\n${FORGED}`]: 1 });

    await services.close();
    log.close();

    const text = readFileSync(join(home.path, "service.log"), "utf8");
    const lines = text.trimEnd().split("\n");
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.filter((l) => l.message === "forged")).toEqual([]);
    expect(parsed.filter((l) => l.level === "ERROR")).toEqual([]);
    for (const line of parsed) expect(Object.keys(line).slice(0, 3)).toEqual(["timestamp", "level", "message"]);
    // Exactly the lines we caused: one WARN at start-up, one per request, one processed
    // update, one refusal, and the two direct calls.
    const messages = parsed.map((l) => l.message);
    expect(messages.filter((m) => m === "request")).toHaveLength(requests + 1);
    expect(messages.filter((m) => m === "Telemetry processed")).toHaveLength(1);
    expect(messages.filter((m) => m === "request refused")).toHaveLength(2);
    expect(parsed.find((l) => l.message === "Telemetry processed")?.keys).toEqual([hostileKey, "a\u2028b"]);
    expect(parsed.find((l) => l.message === "request refused" && l.address)?.user_agent).toBe(ua);
    expect(parsed.find((l) => l.message === "request" && l.status === 404)?.path).toBe(
      `/x%0D%0A${encodeURIComponent(FORGED)}`,
    );
  });
});
