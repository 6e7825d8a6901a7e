"""The deployment manifests on a real API server: each overlay passes a server-side dry run, and Syringe
running with the ServiceAccount's own token under RBAC can do its job and nothing more."""

from __future__ import annotations

import base64
import copy
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from syringe.curriculum import load_curriculum
from syringe.livelessons import LiveLessons, Status
from syringe.plan import PlanSettings
from syringe.runtime.kubernetes import KubernetesRuntime, api_client_from
from syringe.settings import KubernetesSettings, LifecycleSettings
from tests.integration.helpers import REPO, StandInProcess, settled

pytestmark = pytest.mark.integration


def kustomize(overlay: str) -> list[dict[str, Any]]:
    rendered = subprocess.run(["kubectl", "kustomize", str(REPO / overlay)], check=True, capture_output=True, text=True)
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def _served(dyn: dynamic.DynamicClient, api_version: str, kind: str) -> bool:
    try:
        dyn.resources.get(api_version=api_version, kind=kind)
        return True
    except Exception:  # noqa: BLE001 - the discovery client raises its own not-found errors
        return False


def _for_this_server(dyn: dynamic.DynamicClient, obj: dict[str, Any]) -> dict[str, Any]:
    """The test control plane is Kubernetes 1.20, older than policy/v1: there a PDB is policy/v1beta1."""
    if obj["kind"] == "PodDisruptionBudget" and not _served(dyn, "policy/v1", "PodDisruptionBudget"):
        obj = copy.deepcopy(obj)
        obj["apiVersion"] = "policy/v1beta1"
    return obj


def _apply(dyn: dynamic.DynamicClient, obj: dict[str, Any], dry_run: bool = False) -> None:
    obj = _for_this_server(dyn, obj)
    resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    params = [("dryRun", "All")] if dry_run else []
    try:
        resource.create(body=obj, namespace=obj["metadata"].get("namespace"), query_params=params)
    except ApiException as exc:
        if exc.status != 409:
            raise


@pytest.mark.parametrize("overlay", ["manifests/overlays/dev", "manifests/overlays/prod"])
def test_overlays_pass_a_server_side_dry_run(overlay: str, kube_dynamic: dynamic.DynamicClient) -> None:
    objects = kustomize(overlay)
    replicas = next(o for o in objects if o["kind"] == "Deployment")["spec"]["replicas"]
    assert replicas == (1 if overlay.endswith("dev") else 2)
    namespace = next(o for o in objects if o["kind"] == "Namespace")
    _apply(kube_dynamic, namespace)  # objects inside a dry-run namespace would have nowhere to go
    for obj in objects:
        if obj["kind"] != "Namespace":
            _apply(kube_dynamic, obj, dry_run=True)
    container = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"readinessProbe", "livenessProbe", "resources", "envFrom"} <= set(container)


@pytest.fixture(scope="module")
def service_account_kubeconfig(
    kube_dynamic: dynamic.DynamicClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Applies the base's Namespace, ServiceAccount and RBAC for real; a kubeconfig with the account's token."""
    for obj in kustomize("manifests/base"):
        if obj["kind"] in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
            _apply(kube_dynamic, obj)
    core = client.CoreV1Api(kube_dynamic.client)
    for _ in range(100):
        account = core.read_namespaced_service_account("syringe", "syringe")
        if account.secrets:
            break
        time.sleep(0.1)
    token = base64.b64decode(core.read_namespaced_secret(account.secrets[0].name, "syringe").data["token"]).decode()
    configuration = kube_dynamic.client.configuration
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "sa",
        "clusters": [
            {"name": "c", "cluster": {"server": configuration.host, "certificate-authority": configuration.ssl_ca_cert}}
        ],
        "users": [{"name": "syringe", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "syringe"}}],
    }
    path = tmp_path_factory.mktemp("sa") / "syringe.kubeconfig"
    path.write_text(yaml.safe_dump(document))
    yield path


async def test_the_service_account_can_run_a_lesson(
    service_account_kubeconfig: Path, standin: StandInProcess, kube_dynamic: dynamic.DynamicClient
) -> None:
    instance = f"rb{uuid.uuid4().hex[:6]}"
    runtime = KubernetesRuntime(
        api_client_from(str(service_account_kubeconfig)), instance, KubernetesSettings(address_mode="pod-ip")
    )
    assert await runtime.check() == []
    manager = LiveLessons(
        load_curriculum(REPO / "lessons"),
        runtime,
        PlanSettings(instance=instance),
        LifecycleSettings(),
    )
    await manager.start()
    try:
        ll = await manager.launch("learner", "routing-triangle")
        assert await settled(manager, ll) is Status.READY, ll.error
        assert await manager.delete(ll.id)
        with pytest.raises(ApiException) as gone:
            client.CoreV1Api(kube_dynamic.client).read_namespace(ll.namespace)
        assert gone.value.status == 404
    finally:
        await manager.stop()
        await runtime.close()


def test_the_service_account_can_do_nothing_else(
    service_account_kubeconfig: Path, kube_dynamic: dynamic.DynamicClient
) -> None:
    admin = client.CoreV1Api(kube_dynamic.client)
    decoy = f"not-syringes-{uuid.uuid4().hex[:6]}"
    admin.create_namespace({"metadata": {"name": decoy}})
    admin.create_namespaced_secret(decoy, {"metadata": {"name": "private"}, "stringData": {"key": "value"}})
    syringe = client.CoreV1Api(api_client_from(str(service_account_kubeconfig)))
    try:
        for attempt in (
            lambda: syringe.delete_namespace(decoy),
            lambda: syringe.read_namespaced_secret("private", decoy),
            lambda: syringe.list_secret_for_all_namespaces(),
            lambda: syringe.patch_namespace(decoy, {"metadata": {"labels": {"syringe.io/instance": "x"}}}),
            lambda: syringe.create_namespaced_pod(
                decoy, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
            ),
        ):
            with pytest.raises(ApiException) as refused:
                attempt()
            assert refused.value.status == 403
        assert admin.read_namespace(decoy).status.phase == "Active"
    finally:
        admin.delete_namespace(decoy)
