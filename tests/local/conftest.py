"""Fixtures of the local-runtime tests: real QEMU, the real tiny Linux VM, `syringe serve` with no cluster."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from syringe.runtime.local.host import processes
from syringe.runtime.local.tinylinux import TinyLinux, build_tiny_linux
from tests.integration.helpers import REPO, ServedSyringe


@pytest.fixture(scope="session")
def tiny_linux() -> TinyLinux:
    """The tiny VM, built (or found in the cache). A machine without QEMU fails here, loudly."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("qemu-system-x86_64 is missing: scripts/setup.sh installs it (apt-get install qemu-system-x86)")
    return build_tiny_linux()


def local_env(instance: str, curriculum: Path, **extra: str) -> dict[str, str]:
    return {
        "SYRINGE_CURRICULUM": str(curriculum),
        "SYRINGE_PLAN__INSTANCE": instance,
        "SYRINGE_LOCAL__STATE_DIR": f"/tmp/syringe-test-local/{instance}",
        **extra,
    }


def serve_locally(env: dict[str, str], log: Path) -> ServedSyringe:
    """`syringe serve` with no cluster configured at all: the embedded default."""
    server = ServedSyringe(env, log)
    for name in ("KUBECONFIG", "SYRINGE_KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        server.env.pop(name, None)
    return server


def qemu_processes(marker: str) -> list[int]:
    """Pids of QEMU processes whose arguments contain ``marker``."""
    return [
        pid
        for pid, argv in processes()
        if argv and argv[0].endswith("qemu-system-x86_64") and any(marker in part for part in argv)
    ]


@pytest.fixture
async def http(served: str) -> AsyncIterator[httpx.AsyncClient]:
    """A learner's client of the module's `served` Syringe, with a session of its own."""
    async with httpx.AsyncClient(base_url=served, timeout=60) as client:
        token = (await client.post("/api/v1/sessions")).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


@pytest.fixture(scope="module")
def example_curriculum(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("curriculum") / "lessons"
    shutil.copytree(REPO / "lessons", root)
    yield root
