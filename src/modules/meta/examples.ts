// Request examples for the API docs (/swagger): the contract's fixtures, what NeoLight's
// agents really send. JSON imports, so `bun build` embeds them and the binary reads no file.

import atlas from "../../../test/fixtures/neolight/atlas_update_post.json";
import paused from "../../../test/fixtures/neolight/meta_metrics_paused_post.json";
import hive from "../../../test/fixtures/neolight/meta_metrics_post.json";
import stress from "../../../test/fixtures/neolight/stress_post.json";
import type { RequestExamples } from "../../http/openapi";

export const META_EXAMPLES: RequestExamples = {
  "POST /meta/metrics": {
    hive: { summary: "The hive telemetry agent's full snapshot (every 300 s)", value: hive },
    stress: { summary: "The stress runner: only its own keys; every other key is left as it was", value: stress },
    paused: { summary: "A snapshot with the guardian paused", value: paused },
  },
  "POST /atlas/update": {
    atlas: { summary: "The atlas bridge (every 30 s)", value: atlas },
  },
};
