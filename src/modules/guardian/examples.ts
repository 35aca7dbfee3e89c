// Request examples of the guardian's writes for the API docs (/swagger).
import type { RequestExamples } from "../../http/openapi";

export const GUARDIAN_EXAMPLES: RequestExamples = {
  "POST /guardian/pause": {
    timed: { summary: "Pause for an hour", value: { reason: "investigating fills on ETH-USD", minutes: 60 } },
    open: { summary: "Pause until resumed", value: { reason: "exchange maintenance" } },
  },
  "POST /guardian/resume": {
    resume: { summary: "Resume trading", value: { reason: "fills reconciled" } },
  },
};
