"""An API-server outage during launches: Syringe does not crash, every launch ends READY or ERROR, and no
namespace is left without an owner.

The test runs its own control plane (scripts/k8s-local.sh with a private port and run directory, from
the same cached binaries), because it stops and restarts that API server.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from api.app import create_app
from syringe.curriculum import load_curriculum
from syringe.livelessons import LiveLessons, Status
from syringe.plan import PlanSettings
from syringe.runtime.kubernetes import KubernetesRuntime, api_client_from
from syringe.settings import KubernetesSettings, LifecycleSettings, Settings
from tests.integration.helpers import REPO, StandInProcess, settled

pytestmark = pytest.mark.integration
SCRIPT = REPO / "scripts" / "k8s-local.sh"
ENV = {
    **os.environ,
    "SYRINGE_K8S_RUN": "/tmp/syringe-k8s-outage",
    "SYRINGE_K8S_PORT": "27443",
    "SYRINGE_K8S_ETCD_PORT": "23379",
}
LESSONS = ["linux-basics", "netconf-basics", "rest-api-basics", "routing-triangle"]


def control_plane(*args: str) -> str:
    done = subprocess.run([str(SCRIPT), *args], env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


@pytest.fixture(scope="module")
def private_cluster() -> Iterator[str]:
    kubeconfig = control_plane("start")
    standin = StandInProcess(kubeconfig, node="syringe-standin-outage", addresses="127.101.0.0/16")
    standin.start()
    try:
        yield kubeconfig
    finally:
        standin.stop()
        control_plane("reset")


def _manager(kubeconfig: str, instance: str, tree_root: Path, apply_timeout: float) -> LiveLessons:
    settings = LifecycleSettings(apply_timeout=apply_timeout, launch_timeout=180)
    runtime = KubernetesRuntime(
        api_client_from(kubeconfig), instance, KubernetesSettings(address_mode="pod-ip"), apply_timeout=apply_timeout
    )
    return LiveLessons(load_curriculum(tree_root), runtime, PlanSettings(instance=instance), settings)


def _ensure_nad_crd(kubeconfig: str, present: bool) -> None:
    extensions = client.ApiextensionsV1Api(config.new_client_from_config(config_file=kubeconfig))
    crd = yaml.safe_load((REPO / "manifests/prerequisites/network-attachment-definition-crd.yaml").read_text())
    try:
        if present:
            extensions.create_custom_resource_definition(crd)
        else:
            extensions.delete_custom_resource_definition(crd["metadata"]["name"])
    except ApiException as exc:
        if exc.status not in (404, 409):
            raise
    for _ in range(100):  # discovery follows the CRD by a moment
        groups = client.ApisApi(extensions.api_client).get_api_versions().groups
        if any(g.name == "k8s.cni.cncf.io" for g in groups) == present:
            return
        time.sleep(0.1)


def _service_account_kubeconfig(kubeconfig: str, tmp_path: Path) -> Path:
    """A kubeconfig for a fresh ServiceAccount that RBAC grants nothing."""
    api = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api)
    name = f"nobody-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_service_account("default", {"metadata": {"name": name}})
    for _ in range(100):  # the token controller issues its secret
        account = core.read_namespaced_service_account(name, "default")
        if account.secrets:
            break
        time.sleep(0.1)
    secret = core.read_namespaced_secret(account.secrets[0].name, "default")
    token = base64.b64decode(secret.data["token"]).decode()
    document = yaml.safe_load(Path(kubeconfig).read_text())
    document["users"][0]["user"] = {"token": token}
    path = tmp_path / "nobody.kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path


def _unreachable_kubeconfig(kubeconfig: str, tmp_path: Path) -> Path:
    document = yaml.safe_load(Path(kubeconfig).read_text())
    document["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    path = tmp_path / "nowhere.kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path


async def test_start_checks_say_plainly_what_is_wrong(private_cluster: str, tmp_path: Path) -> None:
    _ensure_nad_crd(private_cluster, present=False)
    admin = KubernetesRuntime(api_client_from(private_cluster), "checks")
    problems = await admin.check()
    assert len(problems) == 1
    assert problems[0].startswith("Multus is not installed")

    _ensure_nad_crd(private_cluster, present=True)
    assert await admin.check() == []
    await admin.close()

    nobody = KubernetesRuntime(api_client_from(str(_service_account_kubeconfig(private_cluster, tmp_path))), "x")
    problems = await nobody.check()
    assert len(problems) == 1
    assert problems[0].startswith("the service account may not create namespaces")
    assert "bind clusterroles.rbac.authorization.k8s.io syringe-lesson" in problems[0]
    await nobody.close()

    nowhere = KubernetesRuntime(api_client_from(str(_unreachable_kubeconfig(private_cluster, tmp_path))), "x")
    problems = await nowhere.check()
    assert len(problems) == 1 and "is unreachable" in problems[0] and "127.0.0.1:1" in problems[0]
    await nowhere.close()


async def test_launches_survive_an_api_server_outage(private_cluster: str) -> None:
    _ensure_nad_crd(private_cluster, present=True)
    patient = _manager(private_cluster, f"pa{uuid.uuid4().hex[:6]}", REPO / "lessons", apply_timeout=90)
    hasty = _manager(private_cluster, f"ha{uuid.uuid4().hex[:6]}", REPO / "lessons", apply_timeout=3)
    await patient.start()
    await hasty.start()

    before = [await patient.launch(f"p{i}", slug) for i, slug in enumerate(LESSONS)]
    await asyncio.to_thread(control_plane, "stop-apiserver")
    during = [await hasty.launch(f"h{i}", slug) for i, slug in enumerate(LESSONS)]
    await asyncio.sleep(5)
    await asyncio.to_thread(control_plane, "start")

    for manager, launched in ((patient, before), (hasty, during)):
        for ll in launched:
            assert await settled(manager, ll, timeout=240) in (Status.READY, Status.ERROR)
    # Launched before the outage, with a generous apply timeout: they ride it out.
    assert all(ll.status is Status.READY for ll in before), [ll.error for ll in before]
    # Launched during it, with a short one: each ends in ERROR with a reason, and cleans up after itself.
    assert all(ll.status is Status.ERROR and ll.error for ll in during)

    assert await patient.cleanups_finished(timeout=120)
    assert await hasty.cleanups_finished(timeout=120)

    core = client.CoreV1Api(api_client_from(private_cluster))
    for manager in (patient, hasty):
        instance = manager.plan_settings.instance
        owned = {ll.namespace for ll in manager.all() if ll.status is Status.READY}
        existing = {
            ns.metadata.name
            for ns in core.list_namespace(label_selector=f"syringe.io/instance={instance}").items
            if not ns.metadata.deletion_timestamp
        }
        assert existing == owned, f"orphaned namespaces: {existing - owned}"

    # Still working after the outage.
    again = await hasty.launch("after", "linux-basics")
    assert await settled(hasty, again) is Status.READY
    for manager in (patient, hasty):
        await manager.stop()
        await manager.runtime.close()


async def test_readyz_fails_while_the_api_server_is_away(private_cluster: str, tmp_path: Path) -> None:
    _ensure_nad_crd(private_cluster, present=True)
    settings = Settings(
        curriculum=REPO / "lessons",
        kubeconfig=private_cluster,
        plan=PlanSettings(instance=f"rz{uuid.uuid4().hex[:6]}"),
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://s") as http:

        async def readiness_becomes(status: int) -> None:
            for _ in range(300):
                if (await http.get("/readyz")).status_code == status:
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(f"/readyz never answered {status}")

        await readiness_becomes(200)
        await asyncio.to_thread(control_plane, "stop-apiserver")
        try:
            await readiness_becomes(503)
            body = (await http.get("/readyz")).json()
            assert "unreachable" in body["detail"]
            assert (await http.get("/healthz")).status_code == 200  # alive all the same
        finally:
            await asyncio.to_thread(control_plane, "start")
        await readiness_becomes(200)
