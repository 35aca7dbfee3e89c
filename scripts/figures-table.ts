// The README's table of NeoLight's figures, made from modules/meta/figures.ts: the README
// holds it between the two markers below, and test/modules/figures.test.ts fails when it
// differs. `bun scripts/figures-table.ts` writes it into README.md after adding a figure.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FIGURES } from "../src/modules/meta/figures";

export const START = "<!-- figures table: made by scripts/figures-table.ts from src/modules/meta/figures.ts -->";
export const END = "<!-- end of figures table -->";
export const README = join(import.meta.dir, "..", "README.md");

const code = (s: string) => `\`${s}\``;

/** The table as markdown, one row per figure in FIGURES order, its columns padded as biome formats them. */
export function figuresTable(): string {
  const rows = FIGURES.map((f) => {
    const states = f.states ? ` (${f.states.map(code).join(", ")})` : "";
    const history = f.history === undefined ? "not recorded" : code(f.history);
    return [code(f.name), `${f.labels.map(code).join(", ")}${states}`, f.unit, history, f.help.replaceAll("|", "\\|")];
  });
  const head = ["family", "labels", "unit", "history kind", "meaning"];
  const widths = head.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** README.md's text with the table between the markers replaced by `table`. */
export function withTable(readme: string, table: string): string {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no figures table markers (${START} ... ${END})`);
  return `${readme.slice(0, a + START.length)}\n\n${table}\n\n${readme.slice(b)}`;
}

if (import.meta.main) {
  writeFileSync(README, withTable(readFileSync(README, "utf8"), figuresTable()));
  console.log(`README.md: ${FIGURES.length} figures`);
}
