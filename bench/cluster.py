"""The cluster a benchmark runs against: the one named, or the project's local control plane."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def kubeconfig_or_local(kubeconfig: str | None) -> str:
    if kubeconfig:
        return kubeconfig
    started = subprocess.run([str(REPO / "scripts/k8s-local.sh"), "start"], check=True, capture_output=True, text=True)
    return started.stdout.strip()
