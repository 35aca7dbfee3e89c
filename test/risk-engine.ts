// A small real HTTP server on port 0 standing in for NeoLight's Rust risk engine
// (risk_engine_rust, CONTRACT section 2), the one part of NeoLight this project does not
// run: GET /risk/state answers `body`, other routes 404 in the engine's {error, code} shape,
// and `mode` switches it to the ways a real engine fails.
import { fixture } from "./helpers";

export type EngineMode = "ok" | "error" | "hang" | "not-json";

/** How long a hanging engine holds a request: far beyond any timeout under test. */
const HANG_MS = 5_000;

export interface StandInEngine extends Disposable {
  mode: EngineMode;
  /** What GET /risk/state answers in mode "ok". Default: the risk_state fixture. */
  body: unknown;
  /** GET /risk/state requests received. */
  requests: number;
  readonly url: string;
  stop(): void;
}

export function standInEngine(body: unknown = fixture("risk_state")): StandInEngine {
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req): Promise<Response> {
      if (new URL(req.url).pathname !== "/risk/state") {
        return Response.json({ error: "Not Found", code: 404 }, { status: 404 });
      }
      engine.requests++;
      if (engine.mode === "error") return new Response("boom", { status: 500 });
      if (engine.mode === "not-json") return new Response("<html>", { status: 200 });
      if (engine.mode === "hang") await Bun.sleep(HANG_MS);
      return Response.json(engine.body);
    },
  });
  const engine: StandInEngine = {
    mode: "ok",
    body,
    requests: 0,
    url: `http://127.0.0.1:${server.port}`,
    stop: () => server.stop(true),
    [Symbol.dispose]: () => server.stop(true),
  };
  return engine;
}
