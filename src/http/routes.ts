// What the app serves, by path: the endpoint list of GET / and the Allow header of a 405.
// Built once from the app's route list (app.ts), so a route a feature adds is listed and
// allowed without being named here.

/**
 * The Go original's endpoint list, in its order. GET / lists these first (CONTRACT
 * section 4): a client that indexes that list, or diffs it, keeps working.
 */
export const ORIGINAL_ENDPOINTS: readonly string[] = [
  "/health",
  "/status",
  "/meta/metrics",
  "/meta/performance",
  "/meta/regime",
  "/governor/allocations",
];

/** The part of an Elysia route this needs. */
export interface RouteEntry {
  method: string;
  path: string;
  hooks?: { detail?: unknown };
}

export interface RouteTable {
  /** Bare paths, each once: ORIGINAL_ENDPOINTS, the other documented paths in route order, then `alsoListed`. */
  endpoints: string[];
  /** Path -> its methods (GET implies HEAD, which Bun answers for every GET route). */
  methods: Record<string, string[]>;
  /** The methods `path` answers, for a 405's Allow header; undefined for an unknown path. */
  allowed(path: string): readonly string[] | undefined;
}

const hidden = (route: RouteEntry) => (route.hooks?.detail as { hide?: boolean } | undefined)?.hide === true;

/**
 * `routes` listed: every route not hidden from the API docs, plus `alsoListed` (hidden from
 * the OpenAPI document but meant for people, such as /swagger itself). Every route, hidden or
 * not, counts for `allowed`: a POST to a stylesheet is a 405 too.
 */
export function routeTable(routes: readonly RouteEntry[], alsoListed: readonly string[] = []): RouteTable {
  const all = new Map<string, string[]>();
  for (const { method, path } of routes) {
    // ? Wildcards ("/*", the CORS preflight) match any path: they say nothing about one.
    if (path.includes("*")) continue;
    const methods = all.get(path) ?? [];
    for (const m of method === "GET" ? ["GET", "HEAD"] : [method]) if (!methods.includes(m)) methods.push(m);
    all.set(path, methods);
  }
  const documented = routes.filter((r) => !hidden(r)).map((r) => r.path);
  const listed = new Set([...documented, ...alsoListed]);
  const endpoints = [...new Set([...ORIGINAL_ENDPOINTS, ...documented, ...alsoListed])].filter(
    (p) => listed.has(p) && all.has(p),
  );
  const methods = Object.fromEntries(endpoints.map((p) => [p, (all.get(p) ?? []).filter((m) => m !== "HEAD")]));
  return { endpoints, methods, allowed: (path) => all.get(path) };
}
