#!/usr/bin/env bash
# The project's test command: set up, lint, type-check, then run every test against real parts.
# The integration tests use the local control plane (scripts/k8s-local.sh, built once and cached),
# unless SYRINGE_TEST_KUBECONFIG names an existing cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
if [ -z "${SYRINGE_TEST_KUBECONFIG:-}" ]; then
  # Stop the control plane afterwards only if this run started it.
  if [[ "$(scripts/k8s-local.sh status)" != *"kube-apiserver running"* ]]; then
    trap 'scripts/k8s-local.sh stop' EXIT
  fi
  SYRINGE_TEST_KUBECONFIG="$(scripts/k8s-local.sh start)"
  export SYRINGE_TEST_KUBECONFIG
fi
.venv/bin/pytest "$@"
