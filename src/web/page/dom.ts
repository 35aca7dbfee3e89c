// A tiny DOM builder. Every value from the service goes in as text (textContent), never
// as HTML: agent names and reasons come from POST bodies, and a name like
// `<img onerror=...>` must show as those characters, not run.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined>;

export function h(tag: string, attrs: Attrs | null = null, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === false) continue;
      if (k === "class") el.className = String(v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "object" ? c : String(c));
  }
  return el;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`page element #${id} missing`);
  return el as T;
}

/** Replaces the children of `el`. */
export function fill(el: HTMLElement, ...children: Child[]): void {
  el.replaceChildren(
    ...children
      .filter((c): c is Node | string | number => c !== null && c !== undefined && c !== false)
      .map((c) => (typeof c === "number" ? String(c) : c)),
  );
}

export function setText(id: string, text: string, cls?: string): void {
  const el = byId(id);
  el.textContent = text;
  if (cls !== undefined) el.className = cls;
}

/** A definition list item: `<div><dt>label</dt><dd>value</dd></div>`. */
export function fact(label: string, value: Child, cls?: string): HTMLElement {
  return h("div", { class: "fact" }, h("dt", null, label), h("dd", cls ? { class: cls } : null, value));
}
