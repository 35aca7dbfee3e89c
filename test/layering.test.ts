// Dependencies point down (issue 10 item 8): the cross-cutting layers know no feature.
// http/ takes what it needs from features as interfaces it declares itself (access-log.ts's
// RequestCounter, write-route.ts's WriteGate); store/ and log/ import no feature module.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./helpers";

test.each(["http", "log", "store"])("src/%s imports no feature module", (layer) => {
  const offending = readdirSync(join(ROOT, "src", layer))
    .filter((f) => f.endsWith(".ts"))
    .filter((f) => /from "(\.\.\/)+modules\//.test(readFileSync(join(ROOT, "src", layer, f), "utf8")))
    .map((f) => `${layer}/${f}`);
  expect(offending).toEqual([]);
});
