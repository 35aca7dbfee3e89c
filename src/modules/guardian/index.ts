// Routes of the guardian feature (issue 11): GET /guardian, POST /guardian/pause and
// POST /guardian/resume. The writes follow the write rules of every write (writeRoute: the
// token, loopback-only without one, the rate limit, JSON-only bodies: a cross-site form post
// is text/plain and is refused with 415, so a hostile page cannot resume trading).
import { Elysia } from "elysia";
import type { HttpError } from "../../http/errors";
import { ErrorResponse } from "../../http/respond";
import type { WriteRoute } from "../../http/write-route";
import { ServedGuardian } from "../meta/model";
import { GuardianView, PauseRequest, ResumeRequest } from "./model";
import type { GuardianService } from "./service";

/** The client address of a request (auth.ts's AccessControl.clientOf). */
export type ClientOf = (request: Request) => string | null;

const writeErrors = { 503: ErrorResponse };

export function guardianRoutes(guardian: GuardianService, writeRoute: WriteRoute, clientOf: ClientOf) {
  const caller = (request: Request) => ({ address: clientOf(request), userAgent: request.headers.get("user-agent") });
  // ? An operator's action is taken whole or not at all: no part of an oversized body is applied.
  const whole =
    <B, A>(act: (body: B, by: ReturnType<typeof caller>) => Promise<A>) =>
    (body: B, _coerced: readonly string[], overLimit: HttpError | undefined, request: Request): Promise<A> => {
      if (overLimit !== undefined) throw overLimit;
      return act(body, caller(request));
    };
  return new Elysia({ name: "guardian" })
    .get("/guardian", () => guardian.view(), {
      response: { 200: GuardianView },
      detail: {
        tags: ["guardian"],
        summary: "The served guardian and each of its sources",
        description:
          "The guardian as GET /meta/metrics serves it, and what it was resolved from: the hive's last report and its age, the pause file (state/guardian_pause.json) with its content, and the last operator action. A pause of any source wins.",
      },
    })
    .post(
      "/guardian/pause",
      ...writeRoute(
        PauseRequest,
        whole((body, by) => guardian.pause(body, by)),
        {
          strict: ["reason", "minutes"],
          response: { 200: ServedGuardian, ...writeErrors },
          detail: {
            tags: ["guardian"],
            summary: "Pause trading",
            description:
              'Writes state/guardian_pause.json atomically ({paused: true, reason, until, updated_at, by: "dashboard"}; no until without minutes; over an active pause the later until is kept, so it never shortens one), which the smart trader and the hive obey too, and answers the served guardian once it is paused and on disk. 503 when the file could not be written: nothing changed.',
          },
        },
      ),
    )
    .post(
      "/guardian/resume",
      ...writeRoute(
        ResumeRequest,
        whole((body, by) => guardian.resume(body, by)),
        {
          strict: ["reason"],
          response: { 200: ServedGuardian, ...writeErrors },
          detail: {
            tags: ["guardian"],
            summary: "Resume trading",
            description:
              "Removes state/guardian_pause.json and serves is_paused: false (resumed by operator) at once, without waiting for the hive's next snapshot; answers once that is on disk. A pause written or reported after it wins again. 503 when the file could not be removed: nothing changed.",
          },
        },
      ),
    );
}
