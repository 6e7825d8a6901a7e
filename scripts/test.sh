#!/usr/bin/env bash
# The project's test command: set up, lint, type-check, then run every test against real parts.
# The integration tests use the local control plane (scripts/k8s-local.sh, built once and cached),
# unless SYRINGE_TEST_KUBECONFIG names an existing cluster. Then the end-to-end tests (tests/e2e) run on a
# real node (kubelet, containerd, images built from the Dockerfiles), on a fresh local control plane of
# their own. Arguments run just those tests: `scripts/test.sh tests/e2e` runs the end-to-end tests alone.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
if [ -z "${SYRINGE_TEST_KUBECONFIG:-}" ]; then
  # Every run starts from an empty control plane (etcd data and run dir forgotten; the build stays
  # cached), so no test can pass on state an earlier run left behind. SYRINGE_TEST_KEEP_CLUSTER=1 keeps a
  # running one, for quick reruns while developing.
  if [ "${SYRINGE_TEST_KEEP_CLUSTER:-0}" != 1 ]; then
    scripts/k8s-local.sh reset
    trap 'scripts/k8s-local.sh stop' EXIT
  elif [[ "$(scripts/k8s-local.sh status)" != *"kube-apiserver running"* ]]; then
    trap 'scripts/k8s-local.sh stop' EXIT  # stop afterwards only what this run started
  fi
  SYRINGE_TEST_KUBECONFIG="$(scripts/k8s-local.sh start)"
  export SYRINGE_TEST_KUBECONFIG
fi
if [ "$#" -gt 0 ]; then
  .venv/bin/pytest "$@"
  exit
fi
.venv/bin/pytest
# No pod of the end-to-end tests may land on the integration tests' pod stand-in: a fresh control plane.
[ "${SYRINGE_TEST_KEEP_CLUSTER:-0}" = 1 ] || scripts/k8s-local.sh reset
.venv/bin/pytest tests/e2e
