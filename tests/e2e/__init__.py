"""End-to-end tests on a real node: scripts/k8s-local.sh start --with-node."""
