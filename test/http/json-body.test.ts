// Issue 16: one bad value in a small section made a whole snapshot pay TypeBox's error
// walk, which visits every value: at 3,000 agents 38 % of the write path, for a regime
// without its timestamp. coerce() now walks only the top-level sections that fail their
// own compiled check, and finds the same problems as the whole walk did. And the body's
// UTF-8 is checked by a validator, not TextDecoder's fatal mode (2.6x slower at 1 MB): the
// same bodies are refused.
import { describe, expect, spyOn, test } from "bun:test";
import { type TSchema, Type as t } from "@sinclair/typebox";
import { type TypeCheck, TypeCompiler } from "@sinclair/typebox/compiler";
import { hiveSnapshot } from "../../bench/history-fill";
import { coerce, compiledCheck, jsonObjectParser, readJsonObject } from "../../src/http/json-body";
import { MetaMetricsDocument, MetaMetricsUpdate, SAFETY_KEYS } from "../../src/modules/meta/model";

const SAFETY = new Set<string>(SAFETY_KEYS);

/** `check`, counting the walks of its whole schema for errors. */
function counted(check: TypeCheck<TSchema>): { check: TypeCheck<TSchema>; walks: () => number } {
  let walks = 0;
  const wrapped = Object.create(check) as TypeCheck<TSchema>;
  wrapped.Errors = (value: unknown) => {
    walks++;
    return check.Errors(value);
  };
  return { check: wrapped, walks: () => walks };
}

describe("coerce", () => {
  test("a bad value in one section of a 3,000-agent snapshot: the whole body is never walked", () => {
    const { check, walks } = counted(TypeCompiler.Compile(MetaMetricsUpdate));
    const body = hiveSnapshot(3000, 1) as Record<string, unknown>;
    body.market_regime = { regime: "BULL", confidence: 0.7 };
    const { coerced, refused } = coerce(check, body, SAFETY);
    expect({ coerced, refused }).toEqual({ coerced: ["market_regime"], refused: [] });
    expect(body.market_regime).toBeNull();
    expect(walks()).toBe(0);
  });

  test("the same problems, in the same order, as TypeBox's walk of the whole value", () => {
    const bodies: Record<string, unknown>[] = [
      { ...hiveSnapshot(3, 1), market_regime: { regime: "BULL" } },
      {
        per_agent: { a: { sharpe_30d: "x", pnl_1d: 1 }, "b/~c": { total_decisions: -1 } },
        per_strategy: { s: { score: "high" } },
        guardian: { is_paused: "true", drawdown: 1, reason: "" },
        breakers: { quote_state: "SHUT" },
        unknown_key: { kept: true },
      },
      { summary: "none", stress_last: [1], mode: 3 },
    ];
    for (const schema of [MetaMetricsUpdate, MetaMetricsDocument]) {
      for (const body of bodies) {
        const check = TypeCompiler.Compile(schema);
        const expected = [...check.Errors(body)].map((e) => `${e.path} ${e.message}`);
        const strictAll = new Set(Object.keys(schema.properties));
        const { refused } = coerce(check, structuredClone(body), strictAll);
        expect(refused.map((e) => `${e.path} ${e.message}`)).toEqual(expected);
      }
    }
  });

  test("a problem under a value already nulled is not nulled again", () => {
    const check = TypeCompiler.Compile(
      t.Object({ x: t.Object({ y: t.Number() }, { minProperties: 2 }), z: t.Object({ y: t.Number() }) }),
    );
    const body = { x: { y: "a" }, z: { y: "b" } };
    expect(coerce(check, body, new Set()).coerced).toEqual(["x", "z/y"]);
    expect(body).toEqual({ x: null, z: { y: null } } as never);
  });
});

describe("readJsonObject's UTF-8", () => {
  const read = (bytes: number[]) =>
    readJsonObject(
      new Request("http://x/", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: new Uint8Array(bytes),
      }),
    );
  const json = (text: string) => [...new TextEncoder().encode(text)];

  test("invalid UTF-8 is refused: a stray byte, an overlong form, an encoded surrogate, a cut sequence", async () => {
    for (const bad of [[0xff], [0xc0, 0xa2], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
      const body = [...json('{"a":"'), ...bad, ...json('"}')];
      await expect(read(body)).rejects.toThrow("request body is not valid UTF-8");
    }
  });

  test("valid UTF-8 is read as written, a leading byte-order mark dropped", async () => {
    expect((await read(json('{"a":"é€😀"}'))).body).toEqual({ a: "é€😀" });
    expect((await read([0xef, 0xbb, 0xbf, ...json('{"b":1}')])).body).toEqual({ b: 1 });
  });
});

// Issue 14: a write route's parser compiled its schema when the route was declared, 13 ms
// of the path to the first 200 for MetaMetricsUpdate; it now compiles on the first body.
test("a write route's parser compiles its schema on its first body, once, not when declared", async () => {
  const schema = t.Object({ a: t.Number() });
  const compile = spyOn(TypeCompiler, "Compile");
  const body = (text: string) =>
    new Request("http://x/", { method: "POST", headers: { "content-type": "application/json" }, body: text });
  try {
    const parse = jsonObjectParser(schema);
    expect(compile).toHaveBeenCalledTimes(0);
    expect(await parse(body('{"a":1}'))).toEqual({ a: 1 });
    const compiles = compile.mock.calls.length;
    expect(compiles).toBeGreaterThan(0);
    // Checked as before: a value that breaks the schema is still coerced to null.
    expect(await parse(body('{"a":"x"}'))).toEqual({ a: null });
    expect(compile).toHaveBeenCalledTimes(compiles);
  } finally {
    compile.mockRestore();
  }
});

// Issue 14: the POST route's parser and the document's restore each compiled
// MetaMetricsUpdate at start-up (5-15 ms a compile); they now share one.
test("compiledCheck compiles a schema once, however many ask, and checks as TypeBox's own", () => {
  const schema = t.Object({ a: t.Number() });
  const compile = spyOn(TypeCompiler, "Compile");
  try {
    const first = compiledCheck(schema);
    expect(compiledCheck(schema)).toBe(first);
    expect(compile).toHaveBeenCalledTimes(1);
    expect([first.Check({ a: 1 }), first.Check({ a: "1" })]).toEqual([true, false]);
    // A different schema object is its own check.
    expect(compiledCheck(t.Object({ a: t.Number() }))).not.toBe(first);
    expect(compile).toHaveBeenCalledTimes(2);
  } finally {
    compile.mockRestore();
  }
});
