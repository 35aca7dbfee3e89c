// Sortable tables of the per-agent and per-strategy figures (their columns: columns.ts).
// Clicking a column header sorts by it (again: the other way); the choice survives live
// updates.
import type { Column } from "./columns";
import { h } from "./dom";

type Row = { name: string; figures: Record<string, unknown> };

export class SortableTable {
  private rows: Row[] = [];
  private sortKey = "name";
  private descending = false;

  constructor(
    private readonly table: HTMLTableElement,
    private readonly nameLabel: string,
    private readonly columns: Column[],
  ) {}

  /** Shows `data` ({name: figures}); anything that is not an object of figures is skipped. */
  update(data: unknown): void {
    this.rows =
      typeof data === "object" && data !== null
        ? Object.entries(data as Record<string, unknown>)
            .filter(([, f]) => typeof f === "object" && f !== null)
            .map(([name, f]) => ({ name, figures: f as Record<string, unknown> }))
        : [];
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

  private value(row: Row): unknown {
    return this.sortKey === "name" ? row.name : row.figures[this.sortKey];
  }

  private render(): void {
    const dir = this.descending ? -1 : 1;
    const sorted = [...this.rows].sort((a, b) => {
      const va = this.value(a);
      const vb = this.value(b);
      if (typeof va === "number" && typeof vb === "number") return (va - vb) * dir;
      if (typeof va === "number") return -1; // missing figures last, either way
      if (typeof vb === "number") return 1;
      return String(va ?? "").localeCompare(String(vb ?? "")) * dir;
    });
    const header = (key: string, label: string, numeric: boolean) => {
      const sorted = this.sortKey === key;
      const button = h("button", { type: "button", class: "sort" }, label);
      button.addEventListener("click", () => this.sortBy(key));
      return h(
        "th",
        {
          scope: "col",
          class: numeric ? "num" : undefined,
          "aria-sort": sorted ? (this.descending ? "descending" : "ascending") : "none",
        },
        button,
      );
    };
    const head = h(
      "thead",
      null,
      h(
        "tr",
        null,
        header("name", this.nameLabel, false),
        ...this.columns.map((c) => header(c.key, c.label, c.numeric ?? true)),
      ),
    );
    const body = h(
      "tbody",
      null,
      ...sorted.map((row) =>
        h(
          "tr",
          null,
          h("th", { scope: "row" }, row.name),
          ...this.columns.map((c) => {
            const v = row.figures[c.key];
            return h(
              "td",
              { class: [(c.numeric ?? true) ? "num" : "", c.cls ? c.cls(v) : ""].join(" ").trim() || undefined },
              c.format(v),
            );
          }),
        ),
      ),
    );
    if (sorted.length === 0)
      body.append(h("tr", null, h("td", { colspan: this.columns.length + 1, class: "empty" }, "nothing reported yet")));
    this.table.replaceChildren(head, body);
  }
}
