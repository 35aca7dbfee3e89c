// Issue 10 item 2: every shape is a schema, and OpenAPI documents all of /status and the
// live stream's events. Before, five parts of /status were `{}` open to anything, and the
// stream's data lines were described in prose only.
import { describe, expect, test } from "bun:test";
import { LiveEvents } from "../../src/modules/live/model";
import { fixture, get, post, startApp } from "../helpers";

type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  patternProperties?: Record<string, Schema>;
  items?: Schema;
  anyOf?: Schema[];
};

/** Paths of object schemas that say nothing of what they hold. */
function openObjects(schema: Schema, path = ""): string[] {
  const found: string[] = [];
  const isObject = schema.type === "object" || (Array.isArray(schema.type) && schema.type.includes("object"));
  const props = Object.keys(schema.properties ?? {}).length + Object.keys(schema.patternProperties ?? {}).length;
  if (isObject && props === 0) found.push(path || "/");
  for (const [k, s] of Object.entries(schema.properties ?? {})) found.push(...openObjects(s, `${path}/${k}`));
  for (const s of Object.values(schema.patternProperties ?? {})) found.push(...openObjects(s, `${path}/*`));
  if (schema.items) found.push(...openObjects(schema.items, `${path}/[]`));
  for (const s of schema.anyOf ?? []) found.push(...openObjects(s, path));
  return found;
}

/** Paths of keys in `value` that `schema` does not name. */
function undocumented(schema: Schema, value: unknown, path = ""): string[] {
  if (Array.isArray(value))
    return value.flatMap((v, i) => (schema.items ? undocumented(schema.items, v, `${path}/${i}`) : []));
  if (typeof value !== "object" || value === null) return [];
  const branch = schema.anyOf?.find((s) => s.type === "object");
  if (branch) return undocumented(branch, value, path);
  const pattern = Object.values(schema.patternProperties ?? {})[0];
  return Object.entries(value).flatMap(([k, v]) => {
    const s = schema.properties?.[k] ?? pattern;
    return s === undefined ? [`${path}/${k}`] : undocumented(s, v, `${path}/${k}`);
  });
}

interface OpenApi {
  paths?: Record<string, { get: { responses: Record<string, { content: Record<string, Record<string, unknown>> }> } }>;
}

describe("OpenAPI documents every shape", () => {
  test("/status: no object without properties, and every field of a real answer named", async () => {
    await using t = await startApp();
    await post(t.app, "/meta/metrics", fixture("meta_metrics_post"));
    const doc = (await get(t.app, "/swagger/json")).body as OpenApi;
    const schema = doc.paths?.["/status"]?.get.responses["200"]?.content["application/json"]?.schema as Schema;
    expect(openObjects(schema)).toEqual([]);
    const status = await get(t.app, "/status");
    expect(status.status).toBe(200);
    expect(undocumented(schema, status.body)).toEqual([]);
  });

  test("/events: the schema of each event's data", async () => {
    await using t = await startApp();
    const doc = (await get(t.app, "/swagger/json")).body as OpenApi;
    const media = doc.paths?.["/events"]?.get.responses["200"]?.content["text/event-stream"];
    expect(media?.["x-events"]).toEqual(JSON.parse(JSON.stringify(LiveEvents)));
    const events = media?.["x-events"] as Record<string, Schema>;
    expect(Object.keys(events.snapshot?.properties ?? {})).toEqual(["version", "updated_at", "doc"]);
    expect(Object.keys(events.snapshot?.properties?.doc?.properties ?? {})).toContain("guardian");
    expect(Object.keys(events.update?.properties ?? {})).toEqual(["version", "updated_at", "set"]);
    expect(Object.keys(events.update?.properties?.set?.properties ?? {})).toContain("guardian");
  });
});

describe("stress_last has a schema (it was an open {} the page and /metrics read fields of)", () => {
  test("a field of the wrong type is stored as null and listed in coerced; the rest as sent", async () => {
    await using t = await startApp();
    const stress = { passed: "yes", worst_case_pnl: -12.5, scenarios: { crash: { pnl: "a lot", survived: true } } };
    const res = await post(t.app, "/meta/metrics", { stress_last: stress });
    expect(res.status).toBe(200);
    expect((res.body as { coerced?: string[] }).coerced?.sort()).toEqual([
      "stress_last/passed",
      "stress_last/scenarios/crash/pnl",
    ]);
    expect((await get(t.app, "/meta/metrics")).body.stress_last).toEqual({
      passed: null,
      worst_case_pnl: -12.5,
      scenarios: { crash: { pnl: null, survived: true } },
    });
  });
});
