// The guardian banner on the page: shows what banner.ts decided (state, words, the pause's
// facts), which control it offers (Pause when not paused, Resume when paused), and greys the
// whole page while the service is unreachable.
import type { Banner } from "./banner";
import { byId, fact, fill, setText } from "./dom";

export function showBanner(b: Banner): void {
  byId("guardian").dataset.state = b.state;
  // ? On <html>, so style.css greys every card at once, not just the banner.
  document.documentElement.dataset.connection = b.state === "disconnected" ? "lost" : "ok";
  setText("g-state", b.title);
  setText("g-reason", b.detail);
  fill(byId("g-pause-facts"), ...b.pause.map((f) => fact(f.label, f.value)));
  byId("g-pause-facts").hidden = b.pause.length === 0;
  // Pausing is always offered (an operator may stop trading whatever is known); resuming
  // only when the service says it is paused.
  byId("g-pause").hidden = b.state === "paused";
  byId("g-resume").hidden = b.state !== "paused";
  document.title = `${b.title} · NeoLight`;
}
