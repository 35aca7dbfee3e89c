// History's points: the figures of modules/meta/figures.ts that have a series, as the
// history store keeps them. Which figures are recorded, under which kind, subject and field,
// is said there; this file only stamps them.

import type { HistoryPoint } from "../../store/history";
import type { JsonObject } from "../../store/store";
import { DOCUMENT_SECTIONS, type FigureFiles, figures, type Reading } from "../meta/figures";

const NO_FILES: FigureFiles = { regime: undefined, governor: undefined, override: undefined };

/** The readings that have a history series, as points stamped `ts`. */
function points(readings: readonly Reading[], ts: number): HistoryPoint[] {
  const out: HistoryPoint[] = [];
  for (const { series, value, state } of readings) {
    if (series === undefined) continue;
    const { kind, subject, field, peak = false } = series;
    out.push(
      state === undefined
        ? { kind, subject, field, ts, value, peak }
        : { kind, subject, field, ts, value, label: state, peak },
    );
  }
  return out;
}

/** The figures of `doc` under the top-level keys `keys`, stamped `ts`. */
export function documentPoints(doc: Readonly<JsonObject>, keys: Iterable<string>, ts: number): HistoryPoint[] {
  // ? Only document sections: a poster's own top-level key named like a file section
  // ("allocations") must not make the files be read as if it had changed them.
  const sections = [...keys].filter((k) => DOCUMENT_SECTIONS.has(k));
  return points(figures(doc, NO_FILES, sections), ts);
}

/** The governor's allocations (its file, else its override copy), stamped `ts`. */
export function allocationPoints(files: FigureFiles, ts: number): HistoryPoint[] {
  return points(figures({}, files, ["allocations"]), ts);
}
