"""End-to-end fixtures: the local control plane with a real node (kubelet, containerd, runc, the CNI plugins
and the Multus stand-in), started by `scripts/k8s-local.sh start --with-node` in the environment this run
was given (SYRINGE_K8S_PORT, SYRINGE_K8S_RUN...). A part that is missing fails the tests loudly; they never
skip.

The end-to-end tests run only when asked for by path (`pytest tests/e2e`): a run of the whole suite leaves
them out until they join the project's test command.

What this run started, it stops: the node's teardown (`scripts/k8s-node.sh down`) then checks that nothing
of any pod was left on the machine, and a leftover fails the run. SYRINGE_TEST_KEEP_CLUSTER=1 keeps the
control plane and the node running.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import config as kube_config

from tests.integration.helpers import install_prerequisites

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
K8S_LOCAL = REPO / "scripts/k8s-local.sh"
K8S_NODE = REPO / "scripts/k8s-node.sh"
IMAGES = REPO / "scripts/images.sh"
TIMINGS: list[str] = []
# The kernel settings the kubelet writes at start; the node must give the machine its own values back.
KUBELET_SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect this directory only when the command line names it (or something in it)."""
    base = config.invocation_params.dir
    for arg in config.args:
        asked = (base / arg.split("::")[0]).resolve()
        if asked == HERE or HERE in asked.parents:
            return None
    return True


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("end-to-end timings")
        for line in TIMINGS:
            terminalreporter.write_line(line)


def timing(what: str, seconds: float) -> None:
    TIMINGS.append(f"{what}: {seconds:.1f}s")


@dataclass
class Node:
    """The running node, as scripts/k8s-node.sh describes it (`env`)."""

    kubeconfig: str
    facts: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> str:
        try:
            return self.facts[name.upper()]
        except KeyError:
            raise AttributeError(name) from None

    def kubectl(self, *args: str, timeout: float = 60, check: bool = True, input: str | None = None) -> str:
        command = ["kubectl", "--kubeconfig", self.kubeconfig, "--cache-dir", f"{self.node_dir}/kubectl-cache", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, input=input)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {shlex.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _status() -> str:
    return _run([K8S_LOCAL, "status"], 60).stdout


def _sysctls() -> dict[str, str]:
    return {name: (Path("/proc/sys") / name).read_text().strip() for name in (*KUBELET_SYSCTLS, "net/ipv4/ip_forward")}


@pytest.fixture(scope="session")
def node() -> Iterator[Node]:
    if os.geteuid() != 0:
        pytest.fail("the end-to-end tests run a kubelet and containerd: they need root", pytrace=False)
    before = _status()
    machine = _sysctls()
    started = time.monotonic()
    # A cold machine installs packages and builds the kubelet here: minutes, once, then cached.
    up = _run([K8S_LOCAL, "start", "--with-node"], 3600)
    if up.returncode != 0:
        pytest.fail(
            f"scripts/k8s-local.sh start --with-node failed ({up.returncode}):\n{up.stderr[-4000:]}", pytrace=False
        )
    timing("control plane and node up (scripts/k8s-local.sh start --with-node)", time.monotonic() - started)
    TIMINGS.extend(
        f"  {line}" for line in up.stderr.splitlines() if any(w in line for w in ("ready in", "Ready at", "restored"))
    )
    if _sysctls() != machine:
        pytest.fail(f"the node changed kernel settings: {machine} -> {_sysctls()}", pytrace=False)
    kubeconfig = up.stdout.strip().splitlines()[-1]
    env = _run([K8S_NODE, "env"], 60)
    if env.returncode != 0:
        pytest.fail(f"scripts/k8s-node.sh env failed: {env.stderr}", pytrace=False)
    facts = {}
    for line in env.stdout.splitlines():
        key, value = line.split("=", 1)
        facts[key] = shlex.split(value)[0] if value else ""
    api = kube_config.new_client_from_config(config_file=kubeconfig)
    try:
        install_prerequisites(api)  # the NetworkAttachmentDefinition CRD, established and served
    finally:
        api.close()
    node = Node(kubeconfig, facts)
    # Only the real node may take pods (a control plane kept from the integration tests has their stand-in).
    others = [n for n in node.kubectl("get", "nodes", "-o", "name").split() if n != f"node/{node.node_name}"]
    if others:
        node.kubectl("delete", *others, "--wait=false")
    yield node

    if os.environ.get("SYRINGE_TEST_KEEP_CLUSTER") == "1":
        return
    stopped = time.monotonic()
    if "kube-apiserver running" not in before:
        down = _run([K8S_LOCAL, "stop"], 600)
    elif "node kubelet running" not in before:
        down = _run([K8S_NODE, "down"], 600)
    else:
        return
    timing("teardown (node down, and the control plane if this run started it)", time.monotonic() - stopped)
    TIMINGS.extend(f"  {line}" for line in down.stderr.splitlines() if "[k8s-node" in line)
    if down.returncode != 0:
        pytest.fail(f"the node's teardown left something behind:\n{down.stderr[-4000:]}", pytrace=False)
    if _sysctls() != machine:
        pytest.fail(f"the node changed kernel settings: {machine} -> {_sysctls()}", pytrace=False)


@pytest.fixture(scope="session")
def images(node: Node) -> dict[str, str]:
    """Every image, built (cached by content) and imported into the node's containerd: name -> archive."""
    started = time.monotonic()
    done = subprocess.run([IMAGES, "import"], capture_output=True, text=True, timeout=3600, cwd=REPO)
    if done.returncode != 0:
        pytest.fail(f"scripts/images.sh import failed ({done.returncode}):\n{done.stderr[-4000:]}", pytrace=False)
    timing("images built and imported (scripts/images.sh import)", time.monotonic() - started)
    built = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.strip())
    # The node's containerd has each (the Node's status lists images only once a minute).
    listed = subprocess.run(
        ["ctr", "-a", node.containerd_sock, "-n", "k8s.io", "images", "ls", "-q"], capture_output=True, text=True
    ).stdout.split()
    for name in built:
        assert name in listed, f"{name} is not on the node: {listed}"
    return built
