#!/bin/sh
# Runs the pinned Bun (1.4.4) with the given arguments, installing it first when missing.
# A newcomer's machine has only Node.js and npm: Bun comes from npm, into .tools/ in the
# project (no root needed, no global state touched), then the dependencies are installed
# from the committed lockfile.
set -eu
BUN_VERSION=1.4.4
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if command -v bun >/dev/null 2>&1 && [ "$(bun --version 2>/dev/null)" = "$BUN_VERSION" ]; then
  BUN=$(command -v bun)
else
  BUN="$root/.tools/node_modules/bun/bin/bun.exe"
  if [ ! -x "$BUN" ] || [ "$("$BUN" --version 2>/dev/null)" != "$BUN_VERSION" ]; then
    echo "installing bun $BUN_VERSION with npm into .tools/" >&2
    npm install --prefix "$root/.tools" --no-save --no-audit --no-fund "bun@$BUN_VERSION" >&2
    # npm may skip bun's postinstall (which puts the platform binary in place); run it.
    if [ "$("$BUN" --version 2>/dev/null)" != "$BUN_VERSION" ]; then
      (cd "$root/.tools/node_modules/bun" && node install.js >&2)
    fi
  fi
fi

# Dependencies from the lockfile, only when they are missing or older than it.
if [ ! -d node_modules ] || [ bun.lock -nt node_modules ]; then
  "$BUN" install --frozen-lockfile >&2
  touch node_modules
fi

exec "$BUN" "$@"
