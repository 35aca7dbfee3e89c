// The JSON-lines logger: every line one JSON object with timestamp, level, message, and no
// way for a field value to break a line or overwrite those keys.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { createLogger, formatLine } from "../../src/log/logger";
import { tempDir } from "../helpers";
import { canMount, fill, mountTmpfs } from "../tmpfs";

describe("formatLine", () => {
  test("fixed keys first, fields after, one line", () => {
    const line = formatLine("INFO", "Telemetry processed", { agents: 3 }, new Date("2025-11-03T22:00:00Z"));
    expect(line).toBe(
      '{"timestamp":"2025-11-03T22:00:00.000Z","level":"INFO","message":"Telemetry processed","agents":3}\n',
    );
  });

  test("hostile field values cannot forge lines or reserved keys", () => {
    const line = formatLine("WARN", "request", {
      path: '/x\n{"level":"ERROR","message":"forged"}\r\n',
      level: "DEBUG",
      message: "overwritten?",
    });
    expect(line.split("\n")).toHaveLength(2);
    expect(JSON.parse(line)).toMatchObject({
      level: "WARN",
      message: "request",
      field_level: "DEBUG",
      field_message: "overwritten?",
      path: '/x\n{"level":"ERROR","message":"forged"}\r\n',
    });
  });

  test("fields JSON cannot hold (a cycle) give a line that says so instead of throwing", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(JSON.parse(formatLine("ERROR", "request failed", { cyclic }))).toEqual({
      timestamp: expect.any(String),
      level: "ERROR",
      message: "request failed",
      log_error: expect.stringContaining("fields not serialisable"),
    });
  });

  test("errors carry their stack", () => {
    const parsed = JSON.parse(formatLine("ERROR", "request failed", { error: new Error("boom") }));
    expect(parsed.error).toMatchObject({
      error: "boom",
      name: "Error",
      stack: expect.stringContaining("logger.test.ts"),
    });
  });
});

describe("createLogger", () => {
  test("writes JSON lines to the file, honours the level, flushes on close", () => {
    using dir = tempDir();
    const path = join(dir.path, "dashboard_go.log");
    const log = createLogger({ level: "INFO", path, stdout: false });
    log.debug("hidden");
    log.info("shown", { n: 1 });
    log.warn("also shown");
    log.close();
    const lines = readFileSync(path, "utf8")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { timestamp: expect.stringMatching(/Z$/), level: "INFO", message: "shown", n: 1 },
      { timestamp: expect.stringMatching(/Z$/), level: "WARN", message: "also shown" },
    ]);
  });

  test("WARN and ERROR reach the file at once, without a flush", () => {
    using dir = tempDir();
    const path = join(dir.path, "x.log");
    const log = createLogger({ level: "DEBUG", path, stdout: false });
    log.error("now", { why: "crash analysis" });
    expect(readFileSync(path, "utf8")).toContain('"message":"now"');
    log.close();
  });
});

describe("a log file on a full disk", () => {
  test.skipIf(!canMount)("a line cut off by ENOSPC is removed: every line in the file stays whole JSON", () => {
    using dir = tempDir();
    using _disk = mountTmpfs(dir.path);
    const path = join(dir.path, "dashboard_go.log");
    const log = createLogger({ level: "INFO", path, stdout: false });
    log.info("before", { n: 1 });
    log.flush();
    fill(dir.path);
    // Free one page, then write more than a page: the write stops halfway with ENOSPC.
    truncateSync(join(dir.path, "filler-0"), 16 * 1024 - 4096);
    log.warn("too big for the space left", { blob: "x".repeat(12_000) });
    for (const name of readdirSync(dir.path)) if (name.startsWith("filler-")) rmSync(join(dir.path, name));
    log.warn("after", { n: 2 });
    log.close();
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    expect(lines.map((l) => (JSON.parse(l) as { message: string }).message)).toEqual(["before", "after"]);
  });
});
