// Shared test helpers: fixtures, a real temporary NEOLIGHT_HOME, the app wired with the
// real services (in process, through app.handle), and waitFor (test/wait.ts). The real
// service process of the e2e tests is test/e2e/process.ts.
import { expect } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type App, createApp } from "../src/app";
import { type Config, configFromEnv } from "../src/config";
import { createMemoryLogger, type MemoryLogger } from "../src/log/logger";
import { type ServiceOverrides, type Services, startServices } from "../src/services";

export { waitFor } from "./wait";

export const ROOT = join(import.meta.dir, "..");
/** Copies of ../shared/fixtures/neolight (fixtures.test.ts checks they have not drifted). */
export const FIXTURES = join(import.meta.dir, "fixtures", "neolight");

export type Json = Record<string, unknown>;

export function fixture(name: string): Json {
  return JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), "utf8")) as Json;
}

export function fixtureText(name: string): string {
  return readFileSync(join(FIXTURES, `${name}.json`), "utf8");
}

/** A temporary directory removed at the end of its `using` scope. */
export function tempDir(prefix = "neolight-test-"): { path: string } & Disposable {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

export function testConfig(home: string, env: Record<string, string> = {}): Config {
  return configFromEnv({
    NEOLIGHT_HOME: home,
    NEOLIGHT_DASHBOARD_PORT: "0",
    // Nothing listens on port 9 (discard) on loopback: "never reached" unless a test says otherwise.
    NEOLIGHT_RISK_URL: "http://127.0.0.1:9",
    NEOLIGHT_SOURCE_POLL_MS: "50",
    // Tests post thousands of updates a second from one address; the limiter has its own tests.
    NEOLIGHT_WRITE_RATE: "0",
    ...env,
  });
}

export interface TestApp extends AsyncDisposable {
  app: App;
  services: Services;
  log: MemoryLogger;
  home: string;
  config: Config;
}

/** The real app and services on a temporary home (or `home`, to test a restart). */
export async function startApp(
  options: { home?: string; env?: Record<string, string>; overrides?: ServiceOverrides } = {},
): Promise<TestApp> {
  const dir = options.home === undefined ? tempDir() : undefined;
  const home = options.home ?? (dir as { path: string }).path;
  const config = testConfig(home, options.env);
  const log = createMemoryLogger();
  mkdirSync(join(home, "state"), { recursive: true });
  // app.handle has no socket: requests come from loopback unless a test injects another address.
  const services = await startServices(config, log, { clientAddress: () => "127.0.0.1", ...options.overrides });
  const app = createApp(services);
  return {
    app,
    services,
    log,
    home,
    config,
    async [Symbol.asyncDispose]() {
      await services.close();
      dir?.[Symbol.dispose]();
    },
  };
}

export function request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Request {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] ??= "application/json";
  }
  return new Request(`http://localhost${path}`, init);
}

/** Anything that answers a Request: the app, or the app with an extra test route. */
export interface Handler {
  handle(request: Request): Promise<Response>;
}

export async function call(
  app: Handler,
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
): Promise<{ status: number; headers: Headers; body: Json }> {
  const res = await app.handle(request(method, path, body, headers));
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: JSON.parse(text) as Json };
}

export const get = (app: Handler, path: string) => call(app, "GET", path);
export const post = (app: Handler, path: string, body: unknown, headers?: Record<string, string>) =>
  call(app, "POST", path, body, headers);

/** Every log line with `message`. */
export function logged(log: MemoryLogger, message: string): Json[] {
  return log.lines.filter((l) => l.message === message);
}

/**
 * Consumes a response body, or cancels it when it is a stream that never ends (the
 * live stream, GET /events): for tests that visit every route.
 */
export async function discardBody(res: Response): Promise<void> {
  if (res.headers.get("content-type")?.startsWith("text/event-stream")) await res.body?.cancel();
  else await res.arrayBuffer();
}

/**
 * A posted guardian as it is served and stored (issue 11): who paused it (a posted pause is
 * the hive's) and since when.
 */
export function servedGuardian(guardian: unknown): Json {
  const g = guardian as Json;
  const paused = g.is_paused === true;
  return { ...g, paused_by: paused ? "hive" : null, paused_since: paused ? expect.any(String) : null };
}

/** A document as GET /meta/metrics serves it: its guardian as servedGuardian says. */
export function served(doc: Json): Json {
  return doc.guardian === undefined ? doc : { ...doc, guardian: servedGuardian(doc.guardian) };
}

/**
 * JSON.parse(text), throwing when any key or string in it holds a lone UTF-16 surrogate:
 * what jq and other strict parsers refuse (JSON.parse and Python's json accept it).
 */
export function strictJson(text: string): unknown {
  const value: unknown = JSON.parse(text);
  const walk = (v: unknown, path: string) => {
    if (typeof v === "string" && !v.isWellFormed()) throw new Error(`lone surrogate at ${path}`);
    if (typeof v !== "object" || v === null) return;
    for (const [key, child] of Object.entries(v)) {
      if (!key.isWellFormed()) throw new Error(`lone surrogate in a key under ${path}`);
      walk(child, `${path}/${key}`);
    }
  };
  walk(value, "");
  return value;
}
