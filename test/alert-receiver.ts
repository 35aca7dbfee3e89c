// A real local HTTP server standing in for the Telegram Bot API or a webhook receiver
// (issue 13): it records every request and answers as the test says.
import type { Server } from "bun";

export interface Received {
  path: string;
  authorization: string | null;
  body: Record<string, unknown>;
}

export interface AlertReceiver extends AsyncDisposable {
  url: string;
  port: number;
  received: Received[];
  /** Requests that came in and have not been answered yet (a hanging receiver). */
  pending(): number;
  /** The Telegram messages' texts, or the webhooks' events, in arrival order. */
  texts(): string[];
  events(): string[];
  stop(): Promise<void>;
}

/** `answer` gets the request's index (0 for the first); the default answers as Telegram's ok. */
export function startReceiver(
  answer: (index: number) => Response | Promise<Response> = () => Response.json({ ok: true, result: {} }),
): AlertReceiver {
  const received: Received[] = [];
  let pending = 0;
  const server: Server<undefined> = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    // ? A hanging receiver must hang longer than any test: Bun's default closes idle requests at 10 s.
    idleTimeout: 0,
    async fetch(req) {
      const index = received.length;
      received.push({
        path: new URL(req.url).pathname,
        authorization: req.headers.get("authorization"),
        body: (await req.json()) as Record<string, unknown>,
      });
      pending++;
      try {
        return await answer(index);
      } finally {
        pending--;
      }
    },
  });
  const url = `http://127.0.0.1:${server.port}`;
  const stop = () => server.stop(true);
  return {
    url,
    port: server.port as number,
    received,
    pending: () => pending,
    texts: () => received.map((r) => String(r.body.text)),
    events: () => received.map((r) => String(r.body.event)),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** A port nothing listens on: a receiver that is down (connection refused). */
export async function deadPort(): Promise<number> {
  const r = startReceiver();
  await r.stop();
  return r.port;
}
