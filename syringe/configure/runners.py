"""Each configuration type: python, ansible, napalm, netconf. Each returns when the target is configured,
or raises ConfigureError with what went wrong (the Job's log tail shows it to the learner)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

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


def _run(command: list[str], target: ConfigTarget, timeout: float) -> None:
    env = {**os.environ, jobenv.ENDPOINT: target.endpoint, jobenv.STAGE: str(target.stage)}
    try:
        done = subprocess.run(
            command,
            env=env,
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


def run_python(target: ConfigTarget, timeout: float) -> None:
    """``<endpoint>.py``, with the target's host, port and credentials in its environment."""
    _run([sys.executable, str(_config_file(target, "python"))], target, timeout)


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
