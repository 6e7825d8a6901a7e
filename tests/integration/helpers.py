"""Shared pieces of the integration tests: the stand-in process, curricula, and waiting on live lessons."""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from syringe.livelessons import LiveLesson, LiveLessons, Status
from tests.standin.openssh import LEARNER, LEARNER_PASSWORD

REPO = Path(__file__).resolve().parents[2]
NAD_CRD = REPO / "manifests/prerequisites/network-attachment-definition-crd.yaml"


def _die_with_parent() -> None:
    """A killed test run must not leave its stand-in holding pod addresses for the next run."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class StandInProcess:
    """The pod stand-in as its own process, like a kubelet would be."""

    def __init__(
        self,
        kubeconfig: str,
        node: str = "syringe-standin",
        addresses: str = "127.100.0.0/16",
        log_path: Path | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.node = node
        self.addresses = addresses
        self.log_path = log_path or Path(f"/tmp/syringe-standin-{node}.log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.standin.agent",
                "--kubeconfig",
                self.kubeconfig,
                "--node",
                self.node,
                "--addresses",
                self.addresses,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=_die_with_parent,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if b"standin ready" not in line:
            self.stop()
            raise RuntimeError(f"the pod stand-in did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def failure_curriculum(root: Path) -> Path:
    """The example curriculum plus lessons whose images fail the way a kubelet reports it."""
    shutil.copytree(REPO / "lessons", root, dirs_exist_ok=True)
    for image, lesson in (
        ("pull-fail", "broken-image"),
        ("crash", "crashing-image"),
        ("slow", "slow-image"),
        ("mute", "mute-image"),
    ):
        (root / "images" / image).mkdir(parents=True)
        (root / "images" / image / "image.meta.yaml").write_text(f"slug: {image}\nsshUser: u\nsshPassword: p\n")
        (root / "lessons" / lesson / "stage0").mkdir(parents=True)
        (root / "lessons" / lesson / "stage0" / "guide.md").write_text("# guide\n")
        (root / "lessons" / lesson / "lesson.meta.yaml").write_text(
            f"name: {lesson}\nslug: {lesson}\ncategory: tools\nendpoints:\n"
            "- name: good\n  image: utility\n  presentations: [{name: cli, port: 22, type: ssh}]\n"
            f"- name: bad\n  image: {image}\n  presentations: [{{name: cli, port: 22, type: ssh}}]\n"
            "stages:\n- description: only\n"
        )
    (root / "images/openssh").mkdir(parents=True)
    (root / "images/openssh/image.meta.yaml").write_text(
        f"slug: openssh\nsshUser: {LEARNER}\nsshPassword: {LEARNER_PASSWORD}\n"
    )
    (root / "lessons/openssh-host/stage0").mkdir(parents=True)
    (root / "lessons/openssh-host/stage0/guide.md").write_text("# guide\n")
    (root / "lessons/openssh-host/lesson.meta.yaml").write_text(
        "name: OpenSSH host\nslug: openssh-host\ncategory: tools\nendpoints:\n"
        "- name: host\n  image: openssh\n  presentations: [{name: cli, port: 22, type: ssh}]\n"
        "stages:\n- description: only\n"
    )
    marker = (
        "import asyncio, os\nimport asyncssh\n\n"
        "async def main():\n"
        "    host = os.environ['SYRINGE_TARGET_HOST']\n"
        "    async with asyncssh.connect(host, int(os.environ['SYRINGE_TARGET_PORT']),\n"
        "                                username=os.environ['SYRINGE_TARGET_USER'],\n"
        "                                password=os.environ['SYRINGE_TARGET_PASSWORD'], known_hosts=None) as c:\n"
        "        await c.run(f\"echo stage {os.environ['SYRINGE_STAGE']} >> /tmp/syringe-marks-{host}\", check=True)\n"
        "\nasyncio.run(main())\n"
    )
    for lesson, script in (
        ("configured-host", marker),
        ("failing-config", "print('the device said no')\nraise SystemExit(4)\n"),
    ):
        for stage in (0, 1):
            (root / "lessons" / lesson / f"stage{stage}" / "configs").mkdir(parents=True)
            (root / "lessons" / lesson / f"stage{stage}" / "guide.md").write_text(f"# stage {stage}\n")
            (root / "lessons" / lesson / f"stage{stage}" / "configs" / "host.py").write_text(script)
        (root / "lessons" / lesson / "lesson.meta.yaml").write_text(
            f"name: {lesson}\nslug: {lesson}\ncategory: tools\nendpoints:\n"
            "- name: host\n  image: utility\n  configurationType: python\n"
            "  presentations: [{name: cli, port: 22, type: ssh}]\n"
            "stages:\n- description: zero\n- description: one\n"
        )
    checked = root / "lessons" / "checked-host"
    (checked / "stage0" / "checks").mkdir(parents=True)
    (checked / "stage0" / "guide.md").write_text("# checks\n")
    (checked / "stage0" / "checks" / "ok.py").write_text("print('all good')\n")
    (checked / "lesson.meta.yaml").write_text(
        "name: checked\nslug: checked-host\ncategory: tools\nendpoints:\n"
        "- name: host\n  image: utility\n  presentations: [{name: cli, port: 22, type: ssh}]\n"
        "stages:\n- description: zero\n  verify:\n"
        "  - {name: kernel, endpoint: host, command: uname -s, expect: '^Linux$', description: Runs Linux}\n"
        "  - {name: your-file, endpoint: host, command: test -f /nonexistent/learner-file,"
        " description: Create the file}\n"
        "  - {name: script, endpoint: host, script: ok.py}\n"
    )
    return root


async def settled(manager: LiveLessons, ll: LiveLesson, timeout: float = 60) -> Status:
    """Wait, on the manager's change notifications, until the live lesson is READY or ERROR."""
    queue = manager.listen(ll.id)
    try:
        deadline = time.monotonic() + timeout
        while ll.status not in (Status.READY, Status.ERROR):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{ll.lesson} still {ll.status} after {timeout}s")
            try:
                await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                continue
        return ll.status
    finally:
        manager.unlisten(queue)


class ServedSyringe:
    """`syringe serve` as a real process on a free port, its output kept for inspection."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.base = ""

    def start(self) -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "syringe.cli", "serve", "--port", str(port)],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            if self.process.poll() is not None:
                raise RuntimeError(f"syringe serve exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/healthz").status_code == 200:
                    return self.base
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("syringe serve did not answer /healthz")

    def stop(self) -> str:
        """Stop it and return its log."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        return self.log_path.read_text()


def syringe_env(instance: str, curriculum: Path, admin_token: str = "", **extra: str) -> dict[str, str]:
    """Settings of a test Syringe: the test cluster, its own instance id, pod IPs, test images."""
    env = {
        "SYRINGE_CURRICULUM": str(curriculum),
        "SYRINGE_KUBECONFIG": os.environ["SYRINGE_TEST_KUBECONFIG"],
        "SYRINGE_PLAN__INSTANCE": instance,
        "SYRINGE_PLAN__IMAGE_REGISTRY": "test",
        "SYRINGE_KUBERNETES__ADDRESS_MODE": "pod-ip",
        **extra,
    }
    if admin_token:
        env["SYRINGE_ADMIN_TOKEN"] = admin_token
    return env


def install_prerequisites(api: client.ApiClient) -> None:
    """What Syringe's start-up checks require of any cluster: the NetworkAttachmentDefinition CRD,
    established and served. Installed here, once per run, so that no test depends on an earlier run (or on
    another test's fixture) having left it in etcd."""
    extensions = client.ApiextensionsV1Api(api)
    body = yaml.safe_load(NAD_CRD.read_text())
    name = body["metadata"]["name"]
    try:
        extensions.create_custom_resource_definition(body)
    except ApiException as exc:
        if exc.status != 409:  # already there
            raise
    group, version, plural = body["spec"]["group"], body["spec"]["versions"][0]["name"], body["spec"]["names"]["plural"]
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + 30
    while True:
        crd = extensions.read_custom_resource_definition(name)
        established = any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))
        if established:
            try:  # served: discovery and the storage layer know the group
                custom.list_cluster_custom_object(group, version, plural, limit=1)
                return
            except ApiException as exc:
                if exc.status != 404:
                    raise
        if time.monotonic() > deadline:
            raise RuntimeError(f"CRD {name} was not established and served within 30 s")
        time.sleep(0.1)
