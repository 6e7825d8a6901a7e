"""Integration fixtures: a real Kubernetes API server, named by SYRINGE_TEST_KUBECONFIG.

scripts/test.sh starts the project's local control plane and sets the variable; point it at any other
cluster (kind, k3d, a real one) to run the same tests there. Without it the tests fail loudly: a missing
part is never a skip.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException

from syringe.curriculum import load_curriculum
from syringe.livelessons import LiveLessons
from syringe.plan import PlanSettings
from syringe.runtime.kubernetes import KubernetesRuntime, api_client_from
from syringe.settings import KubernetesSettings, LifecycleSettings
from tests.integration.helpers import StandInProcess, failure_curriculum, install_prerequisites

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def kube_api() -> Iterator[client.ApiClient]:
    """The test cluster, with its prerequisites installed: every integration test that touches the cluster
    goes through this fixture, whatever the selection or order."""
    path = os.environ.get("SYRINGE_TEST_KUBECONFIG")
    if not path or not Path(path).is_file():
        pytest.fail(
            "integration tests need a Kubernetes API server: run scripts/test.sh (it starts one) "
            "or set SYRINGE_TEST_KUBECONFIG to a kubeconfig",
            pytrace=False,
        )
    api = config.new_client_from_config(config_file=path)
    try:
        client.VersionApi(api).get_code()
    except Exception as exc:  # noqa: BLE001 - any failure here means no usable cluster
        pytest.fail(f"the API server in {path} does not answer: {exc}", pytrace=False)
    install_prerequisites(api)
    yield api
    api.close()


@pytest.fixture(scope="session", autouse=True)
def cluster_prerequisites(kube_api: client.ApiClient) -> None:
    """Tests that start `syringe serve` or the CLI against SYRINGE_TEST_KUBECONFIG ask for no Kubernetes
    fixture of their own; this installs the cluster's prerequisites before any of them runs."""


@pytest.fixture(scope="session")
def kube_dynamic(kube_api: client.ApiClient) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(kube_api)


@pytest.fixture(scope="session")
def standin(kube_api: client.ApiClient) -> Iterator[StandInProcess]:
    path = os.environ["SYRINGE_TEST_KUBECONFIG"]
    # Two test runs against two control planes at once need pod addresses of their own.
    process = StandInProcess(path, addresses=os.environ.get("SYRINGE_TEST_STANDIN_CIDR", "127.100.0.0/16"))
    process.start()
    yield process
    process.stop()


@pytest.fixture
def instance() -> str:
    """A Syringe instance id of the test's own, so tests never see each other's live lessons."""
    return f"it{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def lifecycle(
    kube_dynamic: dynamic.DynamicClient, standin: StandInProcess, instance: str, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[LiveLessons]]]:
    """Builds started managers on the real cluster; deletes everything of the test's instance afterwards."""
    kubeconfig = os.environ["SYRINGE_TEST_KUBECONFIG"]
    made: list[tuple[LiveLessons, KubernetesRuntime]] = []
    tree = load_curriculum(failure_curriculum(tmp_path / "curriculum"))
    assert not tree.problems, tree.problems

    async def make(**lifecycle_overrides: object) -> LiveLessons:
        settings = LifecycleSettings(**lifecycle_overrides)  # type: ignore[arg-type]
        runtime = KubernetesRuntime(
            api_client_from(kubeconfig),
            instance,
            KubernetesSettings(address_mode="pod-ip"),
            apply_timeout=settings.apply_timeout,
        )
        manager = LiveLessons(tree, runtime, PlanSettings(instance=instance, image_registry="test"), settings)
        await manager.start()
        made.append((manager, runtime))
        return manager

    yield make
    for manager, _ in made:
        await manager.stop()
    core = client.CoreV1Api(kube_dynamic.client)
    for ns in core.list_namespace(label_selector=f"syringe.io/instance={instance}").items:
        with contextlib.suppress(ApiException):
            core.delete_namespace(ns.metadata.name)
    for _, runtime in made:
        await runtime.close()
