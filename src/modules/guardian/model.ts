// Schemas of the guardian feature (issue 11): the pause file (CONTRACT sections 1 and 6),
// the operator's pause and resume bodies, the sources the served guardian is resolved
// from, and GET /guardian. One schema, three uses: validation, types, OpenAPI.
import { Type as t } from "@sinclair/typebox";
import { Guardian, ServedGuardian } from "../meta/model";

const open = { additionalProperties: true } as const;
const StampOrNull = (description: string) => t.Union([t.String(), t.Null()], { description });

/**
 * state/guardian_pause.json as NeoLight's writers leave it (the fixture guardian_pause.json):
 * agent self-heal, this service's POST /guardian/pause (`by: "dashboard"`), operators by
 * hand. ? `until: null` is taken as "no end" like an absent one: a hand-written file may say
 * so, and refusing it would serve its pause as "unreadable" rather than with its reason.
 */
export const PauseFileContent = t.Object(
  {
    paused: t.Boolean({ description: "true: trading is paused" }),
    reason: t.String({ description: "why" }),
    until: t.Optional(
      t.Union([t.String(), t.Null()], {
        description: "when the pause ends (ISO 8601 UTC, Z); absent or null: until removed",
      }),
    ),
    updated_at: t.Optional(StampOrNull("when it was written (ISO 8601 UTC, Z)")),
    by: t.Optional(t.String({ description: '"dashboard" when written by POST /guardian/pause' })),
  },
  { ...open, description: "state/guardian_pause.json" },
);
export type PauseFileContent = typeof PauseFileContent.static;

/** What the pause file said when last applied: absent, its content, or present but never readable. */
export const PauseReading = t.Union([
  t.Object({ state: t.Literal("absent") }),
  t.Object({ state: t.Literal("content"), content: PauseFileContent }),
  t.Object({ state: t.Literal("unreadable"), error: t.String() }),
]);
export type PauseReading = typeof PauseReading.static;

export const OperatorAction = t.Object({
  last_action: t.Union([t.Literal("pause"), t.Literal("resume"), t.Null()], {
    description: "the last operator action since the state file was created",
  }),
  at: StampOrNull("when (ISO 8601 UTC, Z)"),
  reason: t.Union([t.String(), t.Null()], { description: "the reason the operator gave" }),
  client: t.Union([t.String(), t.Null()], { description: "the client address it came from" }),
});
export type OperatorAction = typeof OperatorAction.static;

/**
 * What the served guardian is resolved from, kept in the state file under GUARDIAN_SOURCES_KEY
 * (never served): the hive's last report and when it came, the pause file as last applied,
 * the last operator action.
 */
export const GuardianSources = t.Object({
  hive: t.Union([t.Object({ report: Guardian, received_at: t.Union([t.String(), t.Null()]) }), t.Null()]),
  pause_file: PauseReading,
  operator: t.Union([OperatorAction, t.Null()]),
});
export type GuardianSources = typeof GuardianSources.static;

/** Longest reason an operator may give: a sentence, not a document (it is logged and shown). */
export const MAX_REASON_CHARS = 500;
/** Longest timed pause: one week (the page offers 15 min to 4 h, or until resumed). */
export const MAX_PAUSE_MINUTES = 10_080;

export const PauseRequest = t.Object(
  {
    reason: t.String({ minLength: 1, maxLength: MAX_REASON_CHARS, description: "why, shown to everyone" }),
    minutes: t.Optional(
      t.Integer({
        minimum: 1,
        maximum: MAX_PAUSE_MINUTES,
        description: "how long; absent: until resumed",
      }),
    ),
  },
  { description: "Pause trading: writes state/guardian_pause.json (other keys are ignored)" },
);
export type PauseRequest = typeof PauseRequest.static;

export const ResumeRequest = t.Object(
  { reason: t.Optional(t.String({ maxLength: MAX_REASON_CHARS, description: "why, for the log" })) },
  { description: "Resume trading: removes state/guardian_pause.json (other keys are ignored)" },
);
export type ResumeRequest = typeof ResumeRequest.static;

/** GET /guardian: the served guardian and each of its sources. */
export const GuardianView = t.Object({
  guardian: ServedGuardian,
  sources: t.Object({
    hive: t.Object({
      report: t.Union([Guardian, t.Null()], { description: "the hive's last guardian, as posted" }),
      received_at: StampOrNull("when it came (null: before this feature, or never)"),
      age_s: t.Union([t.Number(), t.Null()], { description: "seconds since then" }),
    }),
    pause_file: t.Object({
      path: t.String(),
      held_here: t.Boolean({
        description:
          "this replica holds the agents' files and reads this file itself; false (a shared store, another host): what follows is the reading the holder shared",
      }),
      present: t.Boolean({ description: "the file exists" }),
      active: t.Boolean({ description: "it pauses now (paused, until absent or ahead, or unreadable)" }),
      content: t.Union([PauseFileContent, t.Null()], { description: "its last good content" }),
      error: t.Union([t.String(), t.Null()], { description: "why its current version cannot be used" }),
    }),
    operator: OperatorAction,
  }),
});
export type GuardianView = typeof GuardianView.static;
