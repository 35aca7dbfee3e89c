// The JSON-lines logger: every line one JSON object with timestamp, level, message, and no
// way for a field value to break a line or overwrite those keys.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { clip, createLogger, formatLine, LOG_ROTATED_FILES, MAX_LOGGED_BYTES } from "../../src/log/logger";
import { createLineSampler } from "../../src/log/sampler";
import { strictJson, tempDir, waitFor } from "../helpers";
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

  // Issue 15 item 12: JSON.stringify writes a lone surrogate as \ud800, and `tail -f | jq`
  // stops at that line.
  test("a lone surrogate in a field value or key is written as U+FFFD; pairs and escaped backslashes stay", () => {
    const line = formatLine("WARN", "request refused", {
      user_agent: "curl\ud800",
      nested: { "k\udc00": ["\ud83d"] },
      emoji: "\ud83d\ude00",
      literal: "C:\\ud800",
    });
    expect(strictJson(line)).toMatchObject({
      user_agent: "curl\ufffd",
      nested: { "k\ufffd": ["\ufffd"] },
      emoji: "\ud83d\ude00",
      literal: "C:\\ud800",
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

describe("clip: client strings in a line", () => {
  test.each([
    ["a short path, untouched", "/meta/metrics", "/meta/metrics"],
    ["exactly the limit, untouched", "a".repeat(MAX_LOGGED_BYTES), "a".repeat(MAX_LOGGED_BYTES)],
    [
      "one byte over: cut, with the original length",
      "a".repeat(MAX_LOGGED_BYTES + 1),
      `${"a".repeat(MAX_LOGGED_BYTES)}…[cut, ${MAX_LOGGED_BYTES + 1} bytes]`,
    ],
    // 85 three-byte characters are 255 bytes: the 86th does not fit whole and is left out.
    ["3-byte characters: never half of one", "€".repeat(100), `${"€".repeat(85)}…[cut, 300 bytes]`],
    ["a surrogate pair is one character", `a${"😀".repeat(100)}`, `a${"😀".repeat(63)}…[cut, 401 bytes]`],
  ])("%s", (_name, value, expected) => {
    expect(clip(value)).toBe(expected);
    expect(Buffer.byteLength(clip(value).replace(/…\[cut, \d+ bytes\]$/, ""))).toBeLessThanOrEqual(MAX_LOGGED_BYTES);
  });

  test("the access line writes a lone surrogate in method or path as U+FFFD", () => {
    using dir = tempDir();
    const path = join(dir.path, "access.log");
    const log = createLogger({ level: "INFO", path, stdout: false });
    log.access("G\ud800T", "/x\udfff\\ud800", 404);
    log.close();
    expect(strictJson(readFileSync(path, "utf8"))).toMatchObject({ method: "G\ufffdT", path: "/x\ufffd\\ud800" });
  });

  test("the access line cuts method and path", () => {
    using dir = tempDir();
    const path = join(dir.path, "x.log");
    const log = createLogger({ level: "INFO", path, stdout: false });
    log.access("M".repeat(1000), `/${"p".repeat(20_000)}`, 404, undefined, "192.0.2.9");
    log.close();
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({
      timestamp: expect.any(String),
      level: "INFO",
      message: "request",
      method: `${"M".repeat(MAX_LOGGED_BYTES)}…[cut, 1000 bytes]`,
      path: `/${"p".repeat(MAX_LOGGED_BYTES - 1)}…[cut, 20001 bytes]`,
      status: 404,
      address: "192.0.2.9",
    });
  });
});

describe("the line sampler", () => {
  test("a few lines per client and window, a total for all, one count per client at the window's end", () => {
    let t = 0;
    const reports: [string | null, number][] = [];
    const sampler = createLineSampler({
      report: (client, n) => reports.push([client, n]),
      perClient: 2,
      total: 3,
      windowMs: 1000,
      now: () => t,
    });
    const admitted = ["a", "a", "a", "b", "b", "c", "d"].map((c) => sampler.admit(c));
    // a: 2 of 3; b: 1 (the total of 3 is reached); c and d come after the total.
    expect(admitted).toEqual([true, true, false, true, false, false, false]);
    expect(reports).toEqual([]);
    t = 1000;
    expect(sampler.admit("a")).toBe(true);
    expect(reports).toEqual([
      ["a", 1],
      ["b", 1],
      [null, 2],
    ]);
    sampler.flush();
    // Nothing suppressed in the new window: nothing to report.
    expect(reports).toHaveLength(3);
  });

  test("the count comes even when the flood stops (a timer to the window's end)", async () => {
    const reports: [string | null, number][] = [];
    const sampler = createLineSampler({ report: (c, n) => reports.push([c, n]), perClient: 1, windowMs: 20 });
    sampler.admit("x");
    sampler.admit("x");
    await waitFor(() => reports.length > 0, "the report");
    expect(reports).toEqual([["x", 1]]);
  });
});

describe("the size cap", () => {
  test(`rotates to .1 ... .${LOG_ROTATED_FILES} at maxBytes; the newest lines are all there, in order, whole`, () => {
    using dir = tempDir();
    const path = join(dir.path, "dashboard_go.log");
    const log = createLogger({ level: "INFO", path, stdout: false, maxBytes: 10_000 });
    for (let n = 0; n < 2000; n++) {
      log.info("line", { n });
      if (n % 10 === 9) log.flush();
    }
    log.close();
    expect(existsSync(`${path}.${LOG_ROTATED_FILES + 1}`)).toBe(false);
    const files = [...Array.from({ length: LOG_ROTATED_FILES }, (_, i) => `${path}.${LOG_ROTATED_FILES - i}`), path];
    const ns = files.flatMap((f) => {
      // One flush of ten lines may start just under the cap.
      expect(statSync(f).size).toBeLessThanOrEqual(10_000 + 10 * 100);
      return readFileSync(f, "utf8")
        .trimEnd()
        .split("\n")
        .map((l) => (JSON.parse(l) as { n: number }).n);
    });
    expect(ns).toEqual(Array.from({ length: ns.length }, (_, i) => 2000 - ns.length + i));
    expect(ns.length).toBeGreaterThan(LOG_ROTATED_FILES * 80);
    expect(log.stats()).toMatchObject({ max_bytes: 10_000, rotations: expect.any(Number) });
    expect(log.stats().rotations).toBeGreaterThan(LOG_ROTATED_FILES);
  });
});

describe("the free-space floor", () => {
  test.skipIf(!canMount)(
    "under minFreeBytes free, INFO stays out of the file and WARN still goes in; one WARN going under, one INFO back",
    async () => {
      using dir = tempDir();
      using _disk = mountTmpfs(dir.path);
      const path = join(dir.path, "dashboard_go.log");
      const filler = join(dir.path, "filler");
      // 256 KiB disk, 200 KiB taken: under the 100 KiB floor from the start.
      writeFileSync(filler, Buffer.alloc(200 * 1024, 1));
      const log = createLogger({ level: "INFO", path, stdout: false, minFreeBytes: 100 * 1024 });
      const messages = () =>
        readFileSync(path, "utf8")
          .trimEnd()
          .split("\n")
          .map((l) => (JSON.parse(l) as { message: string }).message);
      log.info("dropped");
      log.warn("kept");
      log.flush();
      expect(messages()).toEqual(["log disk space low: INFO lines not written to the file", "kept"]);
      expect(log.stats()).toMatchObject({ low_space: true, dropped_low_space: 1, min_free_bytes: 100 * 1024 });
      rmSync(filler);
      // Free space is asked again within SPACE_CHECK_MS: until then INFO lines are still dropped.
      await waitFor(() => {
        log.info("back");
        log.flush();
        return messages().includes("back");
      }, "INFO lines in the file again");
      log.close();
      const after = messages();
      expect(after.slice(0, 3)).toEqual(["log disk space low: INFO lines not written to the file", "kept", "back"]);
      expect(after.filter((m) => m === "log disk space recovered")).toHaveLength(1);
      expect(log.stats()).toMatchObject({ low_space: false });
    },
  );
});
