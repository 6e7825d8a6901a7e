"""Each configuration type: python, ansible, napalm, netconf. Each returns when the target is configured,
or raises ConfigureError with what went wrong (the Job's log tail shows it to the learner)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import NoReturn

from syringe.access.netconf import BASE_NS, NetconfSession, parse_xml
from syringe.configure.target import ConfigTarget
from syringe.curriculum.models import NAPALM_DRIVERS, config_file_names, napalm_driver
from syringe.errors import ConfigureError, NetconfError
from syringe.plan import jobenv

CANDIDATE = "urn:ietf:params:netconf:capability:candidate:1.0"


def _config_file(target: ConfigTarget, kind: str) -> Path:
    for name in config_file_names(target.endpoint, kind):  # type: ignore[arg-type]
        path = target.configs / name
        if path.is_file():
            return path
    expected = config_file_names(target.endpoint, kind)[0]  # type: ignore[arg-type]
    raise ConfigureError(f"no {kind} configuration for {target.endpoint} in {target.configs} (expected {expected})")


def _script_environment(target: ConfigTarget) -> dict[str, str]:
    return {**os.environ, jobenv.ENDPOINT: target.endpoint, jobenv.STAGE: str(target.stage)}


def _run(command: list[str], target: ConfigTarget, timeout: float) -> None:
    try:
        done = subprocess.run(
            command,
            env=_script_environment(target),
            cwd=target.configs,
            timeout=timeout,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except subprocess.TimeoutExpired as exc:
        raise ConfigureError(f"{Path(command[1]).name} did not finish within {timeout:g}s") from exc
    except OSError as exc:
        raise ConfigureError(f"cannot run {command[0]}: {exc.strerror}") from exc
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        raise ConfigureError(f"{Path(command[-1]).name} exited with status {done.returncode}")


def _exit_status(code: object) -> int:
    """What ``python script`` exits with for a SystemExit carrying ``code``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _run_script_in_child(script: Path, target: ConfigTarget) -> NoReturn:
    """The forked child: run ``script`` as ``python script`` would, then exit without returning into the
    configurator's own code."""
    status = 1
    try:
        os.setpgid(0, 0)  # its own process group: a timeout kills whatever the script started too
        os.chdir(target.configs)
        os.environ.update(_script_environment(target))
        sys.argv = [str(script)]
        sys.path[0] = str(script.parent)
        runpy.run_path(str(script), run_name="__main__")
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException:  # noqa: BLE001 - what `python script` does with any uncaught exception
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


def _run_python_script(script: Path, target: ConfigTarget, timeout: float) -> None:
    """``python script`` in a child forked from this process rather than a new interpreter: what the
    configurator imported already (asyncio, asyncssh and its cryptography) is loaded in the child, which
    saves the interpreter's start and those imports, most of a second under a Job's CPU limit, between the
    endpoint answering and its configuration. The configurator runs no other thread when it forks. The
    script writes to the configurator's own output; a timeout kills its process group."""
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        _run_script_in_child(script, target)
    with contextlib.suppress(OSError):  # as the child does: whichever runs first, the group exists
        os.setpgid(child, child)
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, signal.SIGKILL)

    timer = threading.Timer(timeout, expire)
    timer.start()
    # Until the child is reaped its pid, and so its process group's id, cannot be reused: wait for it to end
    # without reaping it, stop the timer, end what it left running, and only then reap it.
    os.waitid(os.P_PID, child, os.WEXITED | os.WNOWAIT)
    timer.cancel()
    timer.join()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child, signal.SIGKILL)
    _, wait_status = os.waitpid(child, 0)
    if expired.is_set():
        raise ConfigureError(f"{script.name} did not finish within {timeout:g}s")
    status = os.waitstatus_to_exitcode(wait_status)
    if status != 0:
        raise ConfigureError(f"{script.name} exited with status {status}")


def run_python(target: ConfigTarget, timeout: float) -> None:
    """``<endpoint>.py``, with the target's host, port and credentials in its environment."""
    _run_python_script(_config_file(target, "python"), target, timeout)


def run_ansible(target: ConfigTarget, timeout: float) -> None:
    """``ansible-playbook <endpoint>.yml`` against an inventory of the one target."""
    playbook = _config_file(target, "ansible")
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as inventory:
        inventory.write(
            f"{target.endpoint} ansible_host={target.host} ansible_port={target.port} "
            f"ansible_user={target.username} ansible_password={target.password} "
            "ansible_connection=ansible.builtin.paramiko_ssh ansible_host_key_checking=False "
            "ansible_python_interpreter=auto_silent\n"
        )
    try:
        _run(["ansible-playbook", "-i", inventory.name, str(playbook)], target, timeout)
    finally:
        os.unlink(inventory.name)


def napalm_command(target: ConfigTarget, mode: str) -> tuple[str, Path]:
    """The driver and file for ``<endpoint>-<driver>.txt``."""
    path = _config_file(target, "napalm")
    driver = napalm_driver(target.endpoint, path.name)
    if driver is None:
        raise ConfigureError(f"{path.name} names no NAPALM driver of {', '.join(NAPALM_DRIVERS)}")
    if mode not in ("merge", "replace"):
        raise ConfigureError(f"NAPALM mode must be merge or replace, not {mode!r}")
    return driver, path


def run_napalm(target: ConfigTarget, timeout: float, mode: str = "merge") -> None:
    """Load ``<endpoint>-<driver>.txt`` with that NAPALM driver, merged or replacing, and commit."""
    driver, path = napalm_command(target, mode)
    try:
        import napalm  # type: ignore[import-not-found]  # in the configurator image, not a dependency here
    except ImportError as exc:
        raise ConfigureError("NAPALM is not installed in this configurator image") from exc
    device = napalm.get_network_driver(driver)(
        hostname=target.host,
        username=target.username,
        password=target.password,
        timeout=int(timeout),
        optional_args={"port": target.port},
    )
    device.open()
    try:
        config = path.read_text()
        if mode == "replace":
            device.load_replace_candidate(config=config)
        else:
            device.load_merge_candidate(config=config)
        device.commit_config()
    finally:
        device.close()


async def _netconf(target: ConfigTarget, timeout: float) -> None:
    document = parse_xml(_config_file(target, "netconf").read_bytes())
    if document.tag.rsplit("}", 1)[-1] != "config":
        raise ConfigureError("a netconf configuration file holds one <config> element")
    body = _config_file(target, "netconf").read_text()
    try:
        async with await NetconfSession.open(
            target.host, target.port, target.username, target.password, timeout
        ) as session:
            datastore = "candidate" if CANDIDATE in session.server_capabilities else "running"
            reply = await session.rpc(
                f'<edit-config xmlns="{BASE_NS}"><target><{datastore}/></target>{body}</edit-config>', timeout
            )
            _expect_ok(reply, "edit-config")
            if datastore == "candidate":
                _expect_ok(await session.rpc(f'<commit xmlns="{BASE_NS}"/>', timeout), "commit")
    except NetconfError as exc:
        raise ConfigureError(str(exc)) from exc


def _expect_ok(reply: str, operation: str) -> None:
    if "<ok" not in reply:
        raise ConfigureError(f"{operation} refused: {reply[:500]}")


def run_netconf(target: ConfigTarget, timeout: float) -> None:
    """``<endpoint>.xml`` as an edit-config, then a commit where the device has a candidate datastore."""
    asyncio.run(_netconf(target, timeout))


RUNNERS = {"python": run_python, "ansible": run_ansible, "netconf": run_netconf}
