"""The cluster a benchmark runs against: the one named, or the project's local control plane."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def kubeconfig_or_local(kubeconfig: str | None) -> str:
    """The cluster's kubeconfig, with Syringe's prerequisites installed (as the tests install them)."""
    from kubernetes import config

    from tests.integration.helpers import install_prerequisites

    if not kubeconfig:
        started = subprocess.run(
            [str(REPO / "scripts/k8s-local.sh"), "start"], check=True, capture_output=True, text=True
        )
        kubeconfig = started.stdout.strip()
    api = config.new_client_from_config(config_file=kubeconfig)
    try:
        install_prerequisites(api)
    finally:
        api.close()
    return kubeconfig
