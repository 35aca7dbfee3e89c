// The path to the first 200 loads no built-in module that start-up does not use (issue 14):
// in the compiled binary node:crypto takes 8-17 ms to load, node:zlib 5-11 ms, node:util
// ~1 ms and bun:sqlite ~0.4 ms, measured. Where one is needed later it is imported then
// (`await import(...)`), or only by the history thread (bun:sqlite). The main thread's own
// bundle is checked, so an import through any module, ours or a package's, is caught.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { SERVICE } from "../scripts/build";
import { ROOT } from "./helpers";

/** Built-ins the main thread loads only when first needed, or never. */
const LAZY = ["node:crypto", "node:zlib", "node:util", "bun:sqlite"];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/**
 * The main thread's part of the binary: src/main.ts bundled with the same entry points as
 * the binary. ? Both entries, as scripts/build.ts gives them: a module the history thread
 * also uses keeps every export in the main thread's copy (bun:sqlite came in that way).
 */
const mainBundle = (async () => {
  const out = await Bun.build({ entrypoints: SERVICE.entries, root: SERVICE.root, target: "bun" });
  if (!out.success) throw new Error(out.logs.join("\n"));
  const main = out.outputs.find((o) => o.kind === "entry-point" && o.path.endsWith("main.js"));
  if (main === undefined) throw new Error("no main.js in the bundle");
  return main.text();
})();

test.each(LAZY)("the main thread's bundle imports %s at no module's top level", async (name) => {
  // ? The bundler writes built-ins without their "node:" prefix, and hoists every static
  // import of one to the bundle's top, even from a module that is itself imported lazily.
  const bare = name.replace(/^node:/, "");
  // (A package's `require` of one, e.g. debug's of util, is compiled to a call inside its
  // lazy wrapper: it loads nothing until that package is first used.)
  const staticImport = new RegExp(`^import\\b[^;]*?from\\s+"(node:)?${bare}"`, "m");
  const text = await mainBundle;
  expect(text).toContain("// src/main.ts");
  expect(text.match(staticImport)?.[0] ?? null).toBeNull();
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
