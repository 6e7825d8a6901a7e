"""Base configuration, before the lesson's own, every stage: the hostname is the endpoint's name and each
data interface gets the address the plan computed. Linux targets get it over SSH; devices (VM images)
get theirs through their configurator."""

from __future__ import annotations

import asyncio
import shlex

from syringe.access.ssh import login
from syringe.errors import ConfigureError, LoginFailed


def base_script(hostname: str, interfaces: list[tuple[str, str]]) -> str:
    """A POSIX shell script: root, or sudo without a password, sets the hostname and the addresses."""
    # Without root or passwordless sudo nothing can be set; that is fatal only when links need addresses.
    lacking = "exit 1" if interfaces else "exit 0"
    lines = [
        "set -e",
        'S=""',
        'if [ "$(id -u)" != 0 ]; then',
        '  if sudo -n true 2>/dev/null; then S="sudo -n"; else',
        f'    echo "base configuration needs root or passwordless sudo on this endpoint"; {lacking}',
        "  fi",
        "fi",
        f'[ "$(hostname)" = {shlex.quote(hostname)} ] || $S hostname {shlex.quote(hostname)}',
    ]
    for name, address in interfaces:
        lines += [
            f"$S ip address flush dev {shlex.quote(name)} scope global",
            f"$S ip address add {shlex.quote(address)} dev {shlex.quote(name)}",
            f"$S ip link set dev {shlex.quote(name)} up",
        ]
    return "\n".join(lines) + "\n"


async def base_configure(
    host: str,
    port: int,
    username: str,
    password: str,
    hostname: str,
    interfaces: list[tuple[str, str]],
    timeout: float,
) -> None:
    try:
        connection = await login(host, port, username, password, timeout)
    except LoginFailed as exc:
        raise ConfigureError(f"ssh: {exc}") from exc
    async with connection:
        try:
            result = await asyncio.wait_for(connection.run(base_script(hostname, interfaces)), timeout)
        except TimeoutError as exc:
            raise ConfigureError(f"did not finish within {timeout:g}s") from exc
    if result.exit_status != 0:
        output = "".join(str(part) for part in (result.stdout, result.stderr) if part).strip()
        raise ConfigureError(f"exit status {result.exit_status}: {output[-500:]}")
