// test/fixtures/neolight is a copy of ../shared/fixtures/neolight so that a clone runs its
// tests on its own; where the shared folder is present, the copy must not have drifted.
import { expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FIXTURES, ROOT } from "./helpers";

const SHARED = join(ROOT, "..", "shared", "fixtures", "neolight");

test.skipIf(!existsSync(SHARED))("the fixtures match ../shared/fixtures/neolight", () => {
  const names = readdirSync(SHARED).sort();
  expect(readdirSync(FIXTURES).sort()).toEqual(names);
  for (const name of names) {
    expect({ name, text: readFileSync(join(FIXTURES, name), "utf8") }).toEqual({
      name,
      text: readFileSync(join(SHARED, name), "utf8"),
    });
  }
});
