#!/usr/bin/env bash
# The main job: set up, then serve the example curriculum's API on http://127.0.0.1:8086.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/syringe serve --curriculum "${SYRINGE_CURRICULUM:-lessons}" "$@"
