// Number and time formatting for the page. Pure functions (no DOM): test/web/page.test.ts
// runs them under bun test.

const money2 = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const fixed = (digits: number) =>
  new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

export const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/** Signed money: `+$1,234.56`, `-$57.12`, `$0.00`; `—` for a missing figure. */
export function money(v: unknown): string {
  if (!isNum(v)) return "—";
  const text = `$${money2.format(Math.abs(v))}`;
  return v > 0 ? `+${text}` : v < 0 ? `-${text}` : text;
}

/** An amount of money that is not a gain or loss (VaR, CVaR): `$1,250.48`, `-$3.00`; `—` when missing. */
export function amount(v: unknown): string {
  if (!isNum(v)) return "—";
  return `${v < 0 ? "-" : ""}$${money2.format(Math.abs(v))}`;
}

/** A 0..1 ratio as percent: 0.574 -> `57.4%`. */
export function ratioPct(v: unknown, digits = 1): string {
  return isNum(v) ? `${fixed(digits).format(v * 100)}%` : "—";
}

/** A value that already is a percent: 1.84 -> `1.84%`. */
export function pct(v: unknown, digits = 2): string {
  return isNum(v) ? `${fixed(digits).format(v)}%` : "—";
}

/** Short money for chart axes: `$2.5k`, `-$500`, `$1.2M`. */
export function moneyShort(v: number): string {
  const a = Math.abs(v);
  const sign = v < 0 ? "-" : "";
  if (a >= 1e6) return `${sign}$${+(a / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${sign}$${+(a / 1e3).toFixed(1)}k`;
  return `${sign}$${+a.toFixed(a < 10 ? 2 : 0)}`;
}

export function num(v: unknown, digits = 2): string {
  return isNum(v) ? fixed(digits).format(v) : "—";
}

export function int(v: unknown): string {
  return isNum(v) ? fixed(0).format(v) : "—";
}

/** "pos", "neg" or "zero": the CSS class colouring a signed figure. */
export function signClass(v: unknown): string {
  if (!isNum(v) || v === 0) return "zero";
  return v > 0 ? "pos" : "neg";
}

/** Seconds as the largest sensible unit: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d} d` : `${d} d ${h % 24} h`;
}

/** How long ago an ISO time was, relative to `now` (ms): `12 s ago`; `—` when unknown. */
export function ago(iso: unknown, now: number): string {
  if (typeof iso !== "string") return "—";
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return "—";
  const s = (now - t) / 1000;
  return s < -5 ? `in ${duration(-s)}` : `${duration(Math.max(0, s))} ago`;
}

/** An ISO time as local `YYYY-MM-DD HH:MM:SS`; `—` when unknown. */
export function stamp(iso: unknown): string {
  if (typeof iso !== "string") return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
