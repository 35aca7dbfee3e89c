// A real service process for e2e tests: started from source (or a compiled binary) on
// port 0, its stdout read as JSON lines, stopped with real signals.

import { expect } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { compileArgs } from "../../scripts/build";
import { ROOT, waitFor } from "../helpers";

export interface ServiceProcess extends AsyncDisposable {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  url: string;
  /** Every stdout line so far, parsed (a line that is not JSON fails the test that reads it). */
  lines: unknown[];
  /** Raw stdout and stderr so far. */
  output(): { stdout: string; stderr: string };
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface SpawnOptions {
  home: string;
  env?: Record<string, string>;
  /** Command to run; default: bun src/main.ts. */
  cmd?: string[];
  cwd?: string;
  args?: string[];
}

/** Starts the process without waiting for it to listen. */
export function spawnRaw(options: SpawnOptions) {
  const cmd = options.cmd ?? [process.execPath, join(ROOT, "src", "main.ts")];
  return Bun.spawn([...cmd, ...(options.args ?? [])], {
    cwd: options.cwd ?? ROOT,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: options.home,
      NEOLIGHT_HOME: options.home,
      NEOLIGHT_DASHBOARD_PORT: "0",
      NEOLIGHT_DASHBOARD_HOST: "127.0.0.1",
      NEOLIGHT_RISK_URL: "http://127.0.0.1:9",
      ...options.env,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
}

async function drain(stream: ReadableStream<Uint8Array>, sink: { text: string }): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) sink.text += decoder.decode(chunk, { stream: true });
}

/** Starts the service and resolves once it has logged "service started" with its port. */
export async function spawnService(options: SpawnOptions): Promise<ServiceProcess> {
  const proc = spawnRaw(options);
  const out = { text: "" };
  const err = { text: "" };
  const drained = Promise.all([drain(proc.stdout, out), drain(proc.stderr, err)]);
  const parsed = () =>
    out.text
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const started = await waitFor(
    () => {
      if (proc.exitCode !== null) throw new Error(`service exited ${proc.exitCode}: ${out.text}${err.text}`);
      return parsed().find((l) => l.message === "service started");
    },
    "the service to start",
    20_000,
  );
  const port = started.port as number;
  const service: ServiceProcess = {
    proc,
    port,
    url: `http://127.0.0.1:${port}`,
    get lines() {
      return parsed();
    },
    output: () => ({ stdout: out.text, stderr: err.text }),
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const code = await proc.exited;
      await drained;
      return code;
    },
    async [Symbol.asyncDispose]() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await proc.exited;
    },
  };
  return service;
}

export async function postJson(url: string, body: unknown): Promise<Response> {
  return fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

/**
 * `make()` once, remembering only success: callers share one run in flight (and its error,
 * if it fails), and the call after a failure runs `make` again. (Remembering the failure
 * made one build error fail every later binary test with it.)
 */
export function onceOk<T>(make: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= make().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}

/**
 * Builds a standalone binary once per test run (into a temporary directory, so it never
 * races `make build`) with scripts/build.ts, the command of `make build`, and resolves with
 * its path. A build that fails throws the compiler's output, and the next test builds again.
 */
export const compiledBinary = onceOk(async () => {
  const out = join(mkdtempSync(join(tmpdir(), "neolight-bin-")), "neolight-dashboard");
  const proc = Bun.spawn([process.execPath, ...compileArgs(out)], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  // ? Read while it runs: a compiler that fills the pipe would otherwise never exit.
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`build failed (exit ${code}):\n${stdout}${stderr}`);
  return out;
});

/** The process stops at start-up with exit 2 and exactly one JSON ERROR line naming `variable`. */
export async function expectConfigExit(
  proc: ReturnType<typeof spawnRaw>,
  variable: string,
  message: RegExp,
): Promise<void> {
  expect(await proc.exited).toBe(2);
  const lines = (await new Response(proc.stdout).text()).trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(JSON.parse(lines[0] as string)).toMatchObject({
    level: "ERROR",
    message: "invalid configuration",
    variable,
    error: expect.stringMatching(message),
  });
}
