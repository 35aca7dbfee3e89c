# The README's commands, and the build and benchmark targets. Every target goes through
# scripts/bun.sh, which installs the pinned Bun from npm when it is missing.
BUN := sh scripts/bun.sh

.PHONY: run test check lint format build bench screenshots soak clean

run:        ## start the service on :8100 with the embedded defaults
	$(BUN) run src/main.ts

test:       ## type-check, lint, every test
	$(BUN) run scripts/check.ts

lint:
	$(BUN) x biome check .

format:
	$(BUN) x biome check --write .

build:      ## dist/neolight-dashboard: one standalone binary (the compile command: scripts/build.ts)
	$(BUN) run scripts/build.ts dist/neolight-dashboard

bench:      ## every scenario against this service, the floor, the Fiber peer and the Elysia peer; then embedded against PostgreSQL replicas (minutes)
	$(BUN) run bench/run.ts
	$(BUN) run bench/replicas.ts --no-build

screenshots: ## docs/dashboard-*.png, taken by the browser test (needs chromium)
	NEOLIGHT_SCREENSHOTS=1 $(BUN) test test/e2e/browser.test.ts

soak:       ## the compiled binary under mixed load with faults: SOAK_SECONDS (default 600) of it
	$(BUN) run bench/soak.ts

clean:
	rm -rf dist bench/out
