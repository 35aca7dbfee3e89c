// The e2e harness's own promise (test/e2e/process.ts): the compiled binary is built once
// per run, but a failed build is not remembered, so it fails only the test that hit it.
import { describe, expect, test } from "bun:test";
import { onceOk } from "./process";

describe("onceOk (how compiledBinary builds)", () => {
  test("a success is shared; a failure throws its own error and the next call runs again", async () => {
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const build = onceOk(async () => {
      runs++;
      await gate;
      if (runs === 1) throw new Error("build failed: disk full");
      return `/tmp/bin-${runs}`;
    });
    // Two tests asking while the first build runs share it, and its error.
    const [a, b] = [build(), build()];
    release();
    await expect(a).rejects.toThrow("build failed: disk full");
    await expect(b).rejects.toThrow("build failed: disk full");
    expect(runs).toBe(1);
    // The next binary test builds again instead of failing with the old error.
    expect(await build()).toBe("/tmp/bin-2");
    expect(await build()).toBe("/tmp/bin-2");
    expect(runs).toBe(2);
  });
});
