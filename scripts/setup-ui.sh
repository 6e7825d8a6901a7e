#!/usr/bin/env bash
# The web front end's tools, for building ui/ and for the browser tests (tests/browser): Debian's chromium,
# and ui/node_modules from the lock file. Serving the UI needs none of this: the built bundle is committed in
# api/ui_static. Idempotent and quick when done: apt runs only for a missing chromium (`apt-get update` once,
# only when the package is unknown), `npm ci` only when the lock file changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v chromium >/dev/null 2>&1; then
    if ! apt-cache show chromium >/dev/null 2>&1; then
        sudo_if_needed apt-get update -qq
    fi
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

if ! command -v npm >/dev/null 2>&1; then
    if ! apt-cache show npm >/dev/null 2>&1; then
        sudo_if_needed apt-get update -qq
    fi
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# npm ci is reproducible but slow-ish: stamp the lock file's hash, and skip it while nothing changed.
stamp=ui/node_modules/.syringe-lock.sha256
wanted=$(sha256sum ui/package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    (cd ui && npm ci --no-fund --no-audit --loglevel=error)
    echo "$wanted" > "$stamp"
fi
