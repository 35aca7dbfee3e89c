// The path to the first 200 loads no built-in module that costs milliseconds and that
// start-up does not use (issue 14): in the compiled binary node:crypto takes 8-17 ms to
// load and node:zlib 5-11 ms, measured. Where one is needed later it is imported then
// (`await import(...)`); a static import anywhere under src/ would load it at start-up.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT } from "./helpers";

/** Built-ins loaded only when first needed. */
const LAZY = ["node:crypto", "node:zlib"];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

test.each(LAZY)("no module under src/ imports %s statically", (name) => {
  const pattern = new RegExp(`^\\s*(import|export)\\b[^;]*?from\\s+"${name}"`, "m");
  const offending = sources(join(ROOT, "src"))
    .filter((f) => pattern.test(readFileSync(f, "utf8")))
    .map((f) => relative(ROOT, f));
  expect(offending).toEqual([]);
});

// ? The bundler turns a value import from "bun" into a module-level read of `Bun.<name>`,
// and reading `Bun.SQL` loads Bun's SQL client: 2-3 ms of every start-up (measured), in
// the embedded mode too, which never opens a database. `import type` and `Bun.SQL` at the
// call cost nothing until then.
test('no module under src/ imports SQL from "bun" as a value', () => {
  const valueImport = /^\s*import\s+(?!type\b)\{[^}]*\bSQL\b[^}]*\}\s*from\s+"bun"/m;
  const offending = sources(join(ROOT, "src"))
    .filter((f) => valueImport.test(readFileSync(f, "utf8")))
    .map((f) => relative(ROOT, f));
  expect(offending).toEqual([]);
});
