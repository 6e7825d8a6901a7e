"""Lesson code on the local runtime cannot hurt this machine: a lesson's configuration script and learner
checks try to write /etc and /root, read /root and Syringe's state, and dial a port of this machine that is
not the lesson's; all of that fails, reaching the lesson's own endpoint works, and they run as nobody.
Where no sandbox can be made, lesson code does not run unless the operator trusts the curriculum."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from syringe.runtime.base import JobObservation, JobPodObservation
from syringe.runtime.local.runtime import LocalLesson, LocalRuntime
from syringe.runtime.local.sandbox import find_sandbox
from syringe.runtime.local.state import lesson_directory, write_share
from syringe.runtime.local.tinylinux import TinyLinux
from syringe.settings import LocalSettings
from tests.local.conftest import local_env, serve_locally
from tests.local.test_local_faults import _image
from tests.local.test_local_runtime import launch, wait_gone


@pytest.fixture(autouse=True)
def _root() -> None:
    """Lesson code changes user only when Syringe is root: these tests must run as root, never skip."""
    if os.geteuid() != 0:
        pytest.fail("the sandbox tests need root (run the test command as root)", pytrace=False)


INSTANCE = f"ss{os.getpid() % 100000}"
STATE = Path(f"/tmp/syringe-test-local/{INSTANCE}")
MARK = f"syringe-sandbox-{os.getpid()}"
# What the lesson's code must not touch: built by the test, removed after it.
WRITTEN = [Path(f"/etc/{MARK}-config"), Path(f"/root/{MARK}-config"), Path(f"/etc/{MARK}-check")]
ROOT_SECRET = Path(f"/root/{MARK}.secret")

# Each check exits 0 when what it tries succeeds; its last line says what happened.
CONFIGURATION = f"""
import pathlib
for path in ("/etc/{MARK}-config", "/root/{MARK}-config"):
    try:
        pathlib.Path(path).write_text("written by lesson code\\n")
    except OSError as exc:
        print(path, exc)
"""
WRITE_ETC = f"""
try:
    open("/etc/{MARK}-check", "w").write("written by a check\\n")
except OSError as exc:
    raise SystemExit(f"refused: {{exc}}")
print("wrote /etc")
"""
READ_ROOT = f"""
try:
    print(open("{ROOT_SECRET}").read().strip())
except OSError as exc:
    raise SystemExit(f"refused: {{exc}}")
"""
READ_STATE = f"""
import os, stat
mine = (os.environ["SYRINGE_LESSON_DIR"], os.getcwd())
seen = []
for top, dirs, files in os.walk("{STATE}"):
    for name in files:
        path = os.path.join(top, name)
        if path.startswith(mine):
            continue
        seen.append(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue
        if stat.S_ISREG(os.fstat(fd).st_mode):
            print("read", path)
            raise SystemExit(0)
raise SystemExit(f"nothing readable of {{len(seen)}} files")
"""
DIAL = """
import socket, sys
port = int(open(sys.argv[0].rsplit("/", 1)[0] + "/port").read())
try:
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
except OSError as exc:
    raise SystemExit(f"refused: {exc}")
print("connected to", port)
"""
ENDPOINT = """
import os, socket
with socket.create_connection((os.environ["SYRINGE_TARGET_HOST"], int(os.environ["SYRINGE_TARGET_PORT"])), 10) as c:
    print(c.recv(100).decode().strip())
"""
WHOAMI = """
import os
print(f"uid {os.getuid()} gid {os.getgid()} groups {os.getgroups()}")
"""
CHECKS = {
    "write-etc": WRITE_ETC,
    "read-root": READ_ROOT,
    "read-state": READ_STATE,
    "dial-host": DIAL,
    "endpoint": ENDPOINT,
    "whoami": WHOAMI,
}


@pytest.fixture(scope="module")
def listener() -> Iterator[int]:
    """A service of this machine that is not the lesson's, listening on 127.0.0.1."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)  # the kernel completes connections: no accept needed
        yield int(server.getsockname()[1])


@pytest.fixture(scope="module")
def curriculum(tiny_linux: TinyLinux, listener: int, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sandbox") / "lessons"
    root.mkdir()
    (root / "curriculum.meta.yaml").write_text("name: Hostile\n")
    _image(root, "utility", "local:\n  kind: tiny-linux\n")
    stage = root / "lessons" / "hostile" / "stage0"
    (stage / "configs").mkdir(parents=True)
    (stage / "checks").mkdir()
    (stage / "guide.md").write_text("# guide\n")
    (stage / "configs" / "host.py").write_text(CONFIGURATION)
    for name, script in CHECKS.items():
        (stage / "checks" / f"{name}.py").write_text(script)
    (stage / "checks" / "port").write_text(str(listener))
    checks = "".join(f"  - {{name: {name}, endpoint: host, script: {name}.py}}\n" for name in CHECKS)
    (root / "lessons" / "hostile" / "lesson.meta.yaml").write_text(
        "name: hostile\nslug: hostile\ncategory: tools\nendpoints:\n"
        "- name: host\n  image: utility\n  configurationType: python\n"
        "  presentations: [{name: cli, port: 22, type: ssh}]\n"
        f"stages:\n- description: only\n  verify:\n{checks}"
    )
    return root


@pytest.fixture(scope="module")
def served(curriculum: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ROOT_SECRET.write_text("root's secret\n")
    ROOT_SECRET.chmod(0o600)
    server = serve_locally(local_env(INSTANCE, curriculum), tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield server.start()
    finally:
        output = server.stop()
        for path in [ROOT_SECRET, *WRITTEN]:
            path.unlink(missing_ok=True)
        assert "Traceback" not in output, output[-4000:]
        assert "lesson code runs in a bubblewrap sandbox, as nobody" in output


async def _verify(http: httpx.AsyncClient, livelesson: str) -> dict[str, dict[str, Any]]:
    assert (await http.post(f"/api/v1/livelessons/{livelesson}/verify")).status_code == 202
    for _ in range(600):
        verification = (await http.get(f"/api/v1/livelessons/{livelesson}")).json()["verification"]
        if verification and verification["status"] != "running":
            break
        await asyncio.sleep(0.1)
    assert verification["status"] == "done", verification
    return {result["name"]: result for result in verification["results"]}


async def test_lesson_code_runs_as_nobody_and_reaches_only_its_endpoint(http: httpx.AsyncClient) -> None:
    view, _ = await launch(http, "hostile")
    assert view["status"] == "READY", view["error"]  # the configuration script ran (and failed to write)
    for path in WRITTEN[:2]:
        assert not await asyncio.to_thread(path.exists), f"the configuration script wrote {path}"
    results = await _verify(http, view["id"])
    assert not results["write-etc"]["passed"], results["write-etc"]
    assert not await asyncio.to_thread(WRITTEN[2].exists)
    assert not results["read-root"]["passed"], results["read-root"]
    assert not results["read-state"]["passed"], results["read-state"]
    assert not results["dial-host"]["passed"], results["dial-host"]
    assert results["endpoint"]["passed"], results["endpoint"]
    assert results["endpoint"]["message"].startswith("SSH-2.0-OpenSSH")
    assert results["whoami"]["message"] == "uid 65534 gid 65534 groups []", results["whoami"]
    assert (await http.delete(f"/api/v1/livelessons/{view['id']}")).status_code == 202
    await wait_gone(http, view["id"])


# ------------------------------------------------------------------------------------ no sandbox possible

MARKER_JOB = """
import pathlib, sys
pathlib.Path(sys.argv[1]).write_text("ran\\n")
"""


@pytest.fixture
def passable() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="syringe-test-sandbox-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


async def _run_one_job(runtime: LocalRuntime, marker: Path) -> JobPodObservation:
    """A configuration Job of a live lesson made by hand (no VM): how its pod ended."""
    namespace = f"{INSTANCE}-nosandbox"
    directory = runtime.state_dir / namespace
    await asyncio.to_thread(lesson_directory, directory, runtime.run_as)
    await asyncio.to_thread(write_share, directory / "lesson", {"guide.md": b"# guide\n"})
    runtime.lessons[namespace] = LocalLesson(namespace, {}, {}, directory, {})
    container = {"name": "configure", "command": [sys.executable, "-c", MARKER_JOB, str(marker)]}
    job = {
        "kind": "Job",
        "metadata": {"name": "configure-host", "namespace": namespace, "labels": {}},
        "spec": {"activeDeadlineSeconds": 60, "template": {"spec": {"containers": [container], "volumes": []}}},
    }
    events = runtime.events()
    pending = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)  # subscribed once the stream runs
    await runtime.create([job])
    pod = None
    while True:
        event = await asyncio.wait_for(pending, 60)
        if isinstance(event, JobPodObservation):
            pod = event
        if isinstance(event, JobObservation):
            assert pod is not None
            return pod
        pending = asyncio.ensure_future(anext(events))


def test_without_bubblewrap_no_sandbox_is_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_sandbox("nobody") == "bubblewrap (bwrap) is not installed"


@pytest.mark.parametrize("trusted", [False, True])
async def test_without_a_sandbox_lesson_code_runs_only_if_trusted(
    monkeypatch: pytest.MonkeyPatch, passable: Path, trusted: bool
) -> None:
    settings = LocalSettings(state_dir=passable / "state", warm_boot=False, trust_lesson_code=trusted)
    runtime = LocalRuntime(passable, {}, f"{INSTANCE}t", settings)
    with monkeypatch.context() as patched:
        patched.setenv("PATH", str(passable))  # no bwrap to be found
        await runtime.start()
    assert runtime.sandbox is None
    marker = passable / "ran"
    try:
        pod = await _run_one_job(runtime, marker)
    finally:
        await runtime.close()
    if trusted:
        assert pod.phase == "Succeeded", pod
        assert marker.read_text() == "ran\n"
    else:
        assert pod.phase == "Failed"
        assert not marker.exists()
        assert pod.message is not None
        assert "cannot run on this machine: bubblewrap (bwrap) is not installed" in pod.message, pod.message
        assert "SYRINGE_LOCAL__TRUST_LESSON_CODE=true" in pod.message
