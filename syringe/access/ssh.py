"""SSH logins to endpoints with the image's credentials, and failure reasons a person can read."""

from __future__ import annotations

import asyncio

import asyncssh

from syringe.errors import LoginFailed


def reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, asyncssh.PermissionDenied):
        return "the image's credentials were refused"
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc) or type(exc).__name__


async def login(host: str, port: int, username: str, password: str, timeout: float) -> asyncssh.SSHClientConnection:
    """A password login (no agent, no keys, host key not checked: lab endpoints are born anew each time)."""
    try:
        return await asyncio.wait_for(
            asyncssh.connect(
                host,
                port,
                username=username,
                password=password,
                known_hosts=None,
                client_keys=None,
                agent_path=None,
                preferred_auth="password,keyboard-interactive",
            ),
            timeout,
        )
    except TimeoutError as exc:
        raise LoginFailed(f"timed out after {timeout:g}s") from exc
    except (OSError, asyncssh.Error) as exc:
        raise LoginFailed(reason(exc)) from exc
