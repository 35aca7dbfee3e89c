// The Elysia peers' optional thread (PEER_WORKER=1): one idle thread holding an open SQLite
// database, as the service's history writer (issue 16 puts history on its own thread), so
// that its cost to the platform is measured apart.

/** The thread's code: an in-memory database with a table, then idle. */
const WORKER_CODE = `const { Database } = require("bun:sqlite");
const db = new Database(":memory:");
db.run("CREATE TABLE t (a)");
self.onmessage = () => {};`;

/** Starts the thread when PEER_WORKER=1. */
export function maybeStartThread(): void {
  if (process.env.PEER_WORKER !== "1") return;
  new Worker(URL.createObjectURL(new Blob([WORKER_CODE], { type: "application/javascript" })));
}
