// /metrics: NeoLight's own figures, those of the document as GET /meta/metrics serves it (what
// the execution router sees) and of the agent files, as modules/meta/figures.ts projects them.
// This file only writes them in the exposition format: which figures exist, their names,
// labels and help, is said there once.
import type { DocumentStore, JsonObject } from "../../store/store";
import type { AgentFiles } from "../agent-files/service";
import { FIGURES, type Figure, figureFiles, figures, type Reading } from "../meta/figures";
import { defaultDocument } from "../meta/service";
import { type ExpositionWriter, epochMs } from "./exposition";

export interface DocumentFiguresDeps {
  store: DocumentStore;
  files: AgentFiles;
  now: () => number;
}

/** One figure's readings as samples of its family (a state figure gives one series per state). */
function writeFigure(w: ExpositionWriter, figure: Figure, readings: readonly Reading[]): void {
  w.family(figure.name, "gauge", figure.help);
  const stateLabel = figure.labels.at(-1) ?? "state";
  for (const r of readings) {
    if (figure.type === "gauge") {
      if (r.value !== null) w.sample(r.value, r.labels);
    } else if (figure.type === "info") {
      w.sample(1, { ...r.labels, [stateLabel]: r.state ?? "" });
    } else {
      for (const s of figure.states ?? []) w.sample(r.state === s ? 1 : 0, { ...r.labels, [stateLabel]: s });
    }
  }
}

/** Writes the document's last update and every figure of the document and the agent files. */
export function documentFiguresWriter({ store, files, now }: DocumentFiguresDeps): (w: ExpositionWriter) => void {
  return (w) => {
    const state = store.current();
    const updated = epochMs(state.updatedAt);
    if (updated !== null) {
      w.family(
        "neolight_document_last_update_timestamp_seconds",
        "gauge",
        "When the last update was applied (cache_timestamp), seconds since the epoch",
      ).sample(updated / 1000);
    }
    // The document as GET /meta/metrics serves it: what the execution router sees.
    const doc: JsonObject = { ...defaultDocument(new Date(now())), ...state.doc };
    const readings = figures(doc, figureFiles(files));
    const byFigure = new Map<Figure, Reading[]>();
    // ? Pushed in place: copying the list per reading made a scrape at 3,000 agents take
    // 600-900 ms (quadratic in the agents), not ~20 (issue 16).
    for (const r of readings) {
      const list = byFigure.get(r.figure);
      if (list === undefined) byFigure.set(r.figure, [r]);
      else list.push(r);
    }
    for (const figure of FIGURES) writeFigure(w, figure, byFigure.get(figure) ?? []);
  };
}
