// Bundles the dashboard page (src/web/page/) into one script and one stylesheet. It runs
// as a Bun macro (imported `with { type: "macro" }` by web/index.ts): at `bun build
// --compile` the result is inlined into the binary as string literals, and when the
// service runs from source the same happens as the file is loaded. One code path for
// both, nothing read from disk at run time, and the compiled binary needs no files.
// ? Bun.build cannot be called from inside a macro (the bundler would wait on itself);
// Bun's own advice is to run the CLI, which is what this does.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PageBundle {
  /** The page's HTML, with the placeholders %SCRIPT% and %STYLE% for the asset URLs. */
  html: string;
  js: string;
  css: string;
}

export function bundlePage(): PageBundle {
  const dir = join(import.meta.dir, "page");
  const out = mkdtempSync(join(tmpdir(), "neolight-page-"));
  try {
    const build = Bun.spawnSync(
      [process.execPath, "build", join(dir, "main.ts"), "--outdir", out, "--target=browser", "--minify"],
      { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } },
    );
    if (build.exitCode !== 0) {
      throw new Error(`bundling the dashboard page failed: ${build.stderr.toString()}${build.stdout.toString()}`);
    }
    const files = readdirSync(out);
    const read = (ext: string) => {
      const name = files.find((f) => f.endsWith(ext));
      if (name === undefined) throw new Error(`bundling the dashboard page gave no ${ext} file: ${files.join(", ")}`);
      return readFileSync(join(out, name), "utf8");
    };
    return { html: readFileSync(join(dir, "index.html"), "utf8"), js: read(".js"), css: read(".css") };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
