// Hostile requests on a real socket (issue 15 items 12 and 13): a DNS-rebinding page's
// write from 127.0.0.1, sent byte for byte as a browser would, and a lone surrogate, after
// which the document and the log must still pass a strict JSON parser (jq, as CONTRACT
// section 5 says operators read the log).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { fixture, strictJson, tempDir, waitFor } from "../helpers";
import { postJson, spawnService } from "./process";

/** One raw HTTP/1.1 request on a fresh connection; resolves with the status and body. */
function raw(port: number, head: string, body = ""): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    socket.on("data", (d) => {
      text += d.toString("utf8");
    });
    socket.on("error", reject);
    socket.on("close", () => {
      resolve({ status: Number(text.split(" ")[1]), body: text.slice(text.indexOf("\r\n\r\n") + 4) });
    });
    socket.write(`${head}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
}

/** Whether jq parses `text` (true when jq is not installed: strictJson still judges). */
function jqParses(text: string): boolean {
  if (Bun.which("jq") === null) return true;
  return Bun.spawnSync(["jq", "."], { stdin: Buffer.from(text), stdout: "ignore", stderr: "ignore" }).exitCode === 0;
}

describe("a DNS-rebinding page on this host", () => {
  test("its paused write gets 421 over TCP; the router's GET under the same name is 200; localhost still writes", async () => {
    using home = tempDir();
    await using svc = await spawnService({ home: home.path });
    const body = JSON.stringify(fixture("meta_metrics_paused_post"));
    const rebound = await raw(
      svc.port,
      [
        "POST /meta/metrics HTTP/1.1",
        `host: rebind.attacker.example:${svc.port}`,
        `origin: http://rebind.attacker.example:${svc.port}`,
        "content-type: application/json",
      ].join("\r\n"),
      body,
    );
    expect(rebound.status).toBe(421);
    expect(JSON.parse(rebound.body)).toMatchObject({
      code: 421,
      error: expect.stringContaining("NEOLIGHT_ALLOWED_HOSTS"),
    });

    const read = await raw(svc.port, ["GET /meta/metrics HTTP/1.1", "host: rebind.attacker.example"].join("\r\n"));
    expect(read.status).toBe(200);
    expect(JSON.parse(read.body).guardian.is_paused).toBe(false);

    const local = await raw(
      svc.port,
      ["POST /meta/metrics HTTP/1.1", `host: localhost:${svc.port}`, "content-type: application/json"].join("\r\n"),
      body,
    );
    expect(local).toMatchObject({ status: 200 });
  });
});

describe("a lone surrogate", () => {
  test("is refused with 400; the document and the log stay strict JSON", async () => {
    using home = tempDir();
    await using svc = await spawnService({ home: home.path });
    const refused = await fetch(`${svc.url}/meta/metrics`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"k\\ud800": 1, "stress_last": {"note": "\\udfff"}}',
    });
    expect(refused.status).toBe(400);
    const answer = await refused.text();
    expect(strictJson(answer)).toMatchObject({ code: 400 });
    expect((await postJson(`${svc.url}/meta/metrics`, { mode: "LIVE_MODE" })).status).toBe(200);

    const doc = await (await fetch(`${svc.url}/meta/metrics`)).text();
    expect(strictJson(doc)).toMatchObject({ mode: "LIVE_MODE" });

    const logPath = join(home.path, "logs", "dashboard_go.log");
    const log = await waitFor(() => {
      const text = readFileSync(logPath, "utf8");
      return text.includes('"status":400') ? text : undefined;
    }, "the refusal in the log file");
    for (const line of log.split("\n").filter((l) => l !== "")) strictJson(line);
    expect({ answer: jqParses(answer), document: jqParses(doc), log: jqParses(log) }).toEqual({
      answer: true,
      document: true,
      log: true,
    });
  });
});
