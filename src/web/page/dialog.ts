// The Pause / Resume dialog of the guardian banner: asks for the reason (required to pause)
// and a duration, and for the write token when the page is not on the trading host; sends
// the write and says what came of it (writes.ts has the rules and the words). The markup is
// in index.html (no inline script: the CSP forbids it); this file only binds it.
import { type ServedGuardian, utcClock } from "./banner";
import { byId } from "./dom";
import {
  onTradingHost,
  type PauseMinutes,
  pauseRequest,
  REASON_MAX,
  type Refusal,
  refusal,
  resumeRequest,
  type WriteRequest,
  writeHeaders,
} from "./writes";

/** sessionStorage key of the write token: the tab keeps it, nothing is written to disk. */
const TOKEN_KEY = "neolight.writeToken";

type Mode = "pause" | "resume";

function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage off (a private mode): the field is asked for every time
  }
}

function storeToken(token: string): void {
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // ? Storage off: the token was still sent with this write; it is asked for again next time.
  }
}

/** Sends one write; resolves with the served guardian, or throws the refusal's words. */
async function send(req: WriteRequest, token: string | null): Promise<ServedGuardian> {
  let res: Response;
  try {
    res = await fetch(req.path, { method: "POST", headers: writeHeaders(token), body: JSON.stringify(req.body) });
  } catch {
    throw refusal(0, null, null, token !== null);
  }
  // ? A proxy's error page may not be JSON of ours: its status still says what happened.
  const body: unknown = await res.json().catch(() => null);
  if (res.ok) {
    // The route's 200 body is the served guardian (the page checks the one field it acts on).
    if (typeof body === "object" && body !== null && "is_paused" in body) return body as ServedGuardian;
    throw {
      message: "The service answered without the guardian: check the banner.",
      needsToken: false,
    } satisfies Refusal;
  }
  const error =
    typeof body === "object" && body !== null && "error" in body && typeof body.error === "string" ? body.error : null;
  throw refusal(res.status, error, res.headers.get("retry-after"), token !== null);
}

/**
 * Binds the banner's Pause and Resume buttons to the dialog. `applied` gets the served
 * guardian of a 200, so the banner shows it without waiting for the stream.
 */
export function bindGuardianDialog(applied: (g: ServedGuardian) => void): void {
  const dialog = byId<HTMLDialogElement>("g-dialog");
  const form = byId<HTMLFormElement>("g-form");
  const reason = byId<HTMLTextAreaElement>("g-reason-input");
  const durations = byId<HTMLFieldSetElement>("g-durations");
  const tokenRow = byId("g-token-row");
  const token = byId<HTMLInputElement>("g-token");
  const error = byId("g-dialog-error");
  const submit = byId<HTMLButtonElement>("g-submit");
  const note = byId("g-note");
  reason.maxLength = REASON_MAX;
  let mode: Mode = "pause";
  let askToken = !onTradingHost(location.hostname) && storedToken() === null;

  const open = (m: Mode) => {
    mode = m;
    byId("g-dialog-title").textContent = m === "pause" ? "Pause trading" : "Resume trading";
    reason.required = m === "pause";
    reason.placeholder = m === "pause" ? "why (required)" : "why (optional)";
    durations.hidden = m !== "pause";
    tokenRow.hidden = !askToken;
    submit.textContent = m === "pause" ? "Pause" : "Resume";
    submit.className = `g-btn g-btn-${m}`;
    error.textContent = "";
    dialog.showModal();
    reason.focus();
  };
  byId("g-pause").addEventListener("click", () => open("pause"));
  byId("g-resume").addEventListener("click", () => open("resume"));
  byId("g-cancel").addEventListener("click", () => dialog.close());

  form.addEventListener("submit", (e) => {
    // ? Never a native submission: the CSP has form-action 'none', and the write is JSON.
    e.preventDefault();
    const text = reason.value.trim();
    if (mode === "pause" && text === "") {
      error.textContent = "A reason is required to pause.";
      return;
    }
    const picked = durations.querySelector<HTMLInputElement>("input:checked")?.value ?? "";
    // The radio values are PAUSE_MINUTES' (index.html); "" is "until resumed".
    const minutes = (picked === "" ? null : Number(picked)) as PauseMinutes;
    const req = mode === "pause" ? pauseRequest(text, minutes) : resumeRequest(text);
    const typed = askToken && token.value !== "" ? token.value : null;
    if (typed !== null) storeToken(typed);
    submit.disabled = true;
    error.textContent = "sending…";
    void send(req, typed ?? storedToken()).then(
      (g) => {
        submit.disabled = false;
        askToken = false;
        token.value = "";
        reason.value = "";
        dialog.close();
        note.textContent = `${mode === "pause" ? "Paused" : "Resumed"} by you at ${utcClock(new Date().toISOString())}.`;
        applied(g);
      },
      (r: Refusal) => {
        submit.disabled = false;
        error.textContent = r.message;
        if (!r.needsToken) return;
        askToken = true;
        tokenRow.hidden = false;
        token.focus();
      },
    );
  });
}
