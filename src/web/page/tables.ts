// Sortable tables of the per-agent and per-strategy figures (their columns: columns.ts).
// Clicking a column header sorts by it (again: the other way); the choice survives live
// updates. Made for thousands of agents (issue 16: a redraw of 300 rows took 141-172 ms per
// post and kept a core at 31-38 %):
// - a search box keeps the rows whose name holds its text;
// - beyond 2 x EDGE_ROWS rows only the first and last EDGE_ROWS of the order are shown (the
//   best and the worst by the sorted figure), with "show all" in between;
// - rows and cells are made once per name and kept: an update writes only the cells whose
//   text or colour changed, and moves rows only when the order changed;
// - the header stays in view while the table scrolls in its box (style.css).
import type { Column } from "./columns";
import { h } from "./dom";

type Figures = Record<string, unknown>;

/** Rows shown at each end of the order while "show all" is off. */
export const EDGE_ROWS = 10;

/** One row's elements, kept across updates, and what its cells show now. */
interface RowView {
  tr: HTMLTableRowElement;
  cells: HTMLTableCellElement[];
  texts: string[];
  classes: string[];
  figures: Figures;
}

export class SortableTable {
  private figures = new Map<string, Figures>();
  private readonly views = new Map<string, RowView>();
  private sortKey = "name";
  private descending = false;
  private query = "";
  private showAll = false;
  private readonly head: HTMLTableSectionElement;
  private readonly body: HTMLTableSectionElement;
  private readonly headers = new Map<string, HTMLTableCellElement>();
  /** The "… N more" row between the two ends, and the empty-table row. */
  private readonly gap: HTMLTableRowElement;
  private readonly gapText: HTMLElement;
  private readonly empty: HTMLTableRowElement;
  private readonly count: HTMLElement;
  private readonly allButton: HTMLButtonElement;
  /** The rows of the tbody now, in order: compared before moving any. */
  private shown: HTMLTableRowElement[] = [];

  constructor(
    table: HTMLTableElement,
    nameLabel: string,
    private readonly columns: Column[],
  ) {
    const search = h("input", {
      type: "search",
      class: "table-search",
      placeholder: `find ${nameLabel.toLowerCase()}`,
      "aria-label": `find ${nameLabel.toLowerCase()} by name`,
    }) as HTMLInputElement;
    search.addEventListener("input", () => {
      this.query = search.value.trim().toLowerCase();
      this.render();
    });
    this.count = h("span", { class: "muted small table-count" });
    this.allButton = h("button", { type: "button", class: "show-all" }) as HTMLButtonElement;
    this.allButton.addEventListener("click", () => {
      this.showAll = !this.showAll;
      this.render();
    });
    const tools = h("div", { class: "table-tools" }, search, this.count, this.allButton);
    (table.closest(".table-wrap") ?? table).before(tools);

    this.head = h("thead") as HTMLTableSectionElement;
    const headRow = h("tr");
    for (const [key, label, numeric] of [
      ["name", nameLabel, false] as const,
      ...columns.map((c) => [c.key, c.label, c.numeric ?? true] as const),
    ]) {
      const button = h("button", { type: "button", class: "sort" }, label);
      button.addEventListener("click", () => this.sortBy(key));
      const th = h("th", { scope: "col", class: numeric ? "num" : undefined }, button) as HTMLTableCellElement;
      this.headers.set(key, th);
      headRow.append(th);
    }
    this.head.append(headRow);
    this.body = h("tbody") as HTMLTableSectionElement;
    this.gapText = h("span", { class: "muted" });
    const gapButton = h("button", { type: "button", class: "show-all" }, "show all");
    gapButton.addEventListener("click", () => {
      this.showAll = true;
      this.render();
    });
    this.gap = h(
      "tr",
      { class: "gap" },
      h("td", { colspan: columns.length + 1 }, this.gapText, " ", gapButton),
    ) as HTMLTableRowElement;
    this.empty = h(
      "tr",
      null,
      h("td", { colspan: columns.length + 1, class: "empty" }, "nothing reported yet"),
    ) as HTMLTableRowElement;
    table.replaceChildren(this.head, this.body);
  }

  /** Shows `data` ({name: figures}); anything that is not an object of figures is skipped. */
  update(data: unknown): void {
    const next = new Map<string, Figures>();
    if (typeof data === "object" && data !== null) {
      for (const [name, f] of Object.entries(data as Record<string, unknown>)) {
        if (typeof f === "object" && f !== null) next.set(name, f as Figures);
      }
    }
    this.figures = next;
    for (const name of [...this.views.keys()]) if (!next.has(name)) this.views.delete(name);
    this.render();
  }

  private sortBy(key: string): void {
    if (this.sortKey === key) this.descending = !this.descending;
    else {
      this.sortKey = key;
      // Figures read best from the largest down; names from A.
      this.descending = key !== "name";
    }
    this.render();
  }

  private value(name: string, figures: Figures): unknown {
    return this.sortKey === "name" ? name : figures[this.sortKey];
  }

  /** The row of `name`, made the first time, its cells written where they changed. */
  private row(name: string, figures: Figures): HTMLTableRowElement {
    let view = this.views.get(name);
    if (view === undefined) {
      const cells = this.columns.map(() => h("td") as HTMLTableCellElement);
      const tr = h("tr", null, h("th", { scope: "row" }, name), ...cells) as HTMLTableRowElement;
      view = { tr, cells, texts: [], classes: [], figures: {} };
      this.views.set(name, view);
    } else if (view.figures === figures) return view.tr;
    view.figures = figures;
    this.columns.forEach((c, i) => {
      const v = figures[c.key];
      const text = c.format(v);
      const cls = [(c.numeric ?? true) ? "num" : "", c.cls ? c.cls(v) : ""].join(" ").trim();
      const cell = (view as RowView).cells[i] as HTMLTableCellElement;
      if ((view as RowView).texts[i] !== text) {
        cell.textContent = text;
        (view as RowView).texts[i] = text;
      }
      if ((view as RowView).classes[i] !== cls) {
        cell.className = cls;
        (view as RowView).classes[i] = cls;
      }
    });
    return view.tr;
  }

  private render(): void {
    const dir = this.descending ? -1 : 1;
    const names = [...this.figures.keys()].filter((n) => this.query === "" || n.toLowerCase().includes(this.query));
    const sorted = names.sort((a, b) => {
      const va = this.value(a, this.figures.get(a) as Figures);
      const vb = this.value(b, this.figures.get(b) as Figures);
      if (typeof va === "number" && typeof vb === "number") return (va - vb) * dir;
      if (typeof va === "number") return -1; // missing figures last, either way
      if (typeof vb === "number") return 1;
      return String(va ?? "").localeCompare(String(vb ?? "")) * dir;
    });
    for (const [key, th] of this.headers) {
      th.setAttribute("aria-sort", key === this.sortKey ? (this.descending ? "descending" : "ascending") : "none");
    }
    const cut = !this.showAll && sorted.length > 2 * EDGE_ROWS;
    const visible = cut ? [...sorted.slice(0, EDGE_ROWS), ...sorted.slice(-EDGE_ROWS)] : sorted;
    const rows = visible.map((name) => this.row(name, this.figures.get(name) as Figures));
    if (cut) {
      this.gapText.textContent = `… ${sorted.length - 2 * EDGE_ROWS} more`;
      rows.splice(EDGE_ROWS, 0, this.gap);
    }
    if (rows.length === 0) rows.push(this.empty);
    // ? Rows are moved only when the order changed: a live update that changes figures
    // but not the order touches only their cells.
    if (rows.length !== this.shown.length || rows.some((r, i) => r !== this.shown[i])) {
      this.body.replaceChildren(...rows);
      this.shown = rows;
    }
    const total = this.figures.size;
    this.count.textContent = this.query === "" ? `${total}` : `${sorted.length} of ${total}`;
    this.allButton.hidden = sorted.length <= 2 * EDGE_ROWS;
    this.allButton.textContent = this.showAll ? `show top and bottom ${EDGE_ROWS}` : `show all ${sorted.length}`;
  }
}
