"""Inside a lesson-code sandbox: the lesson's endpoints on the sandbox's own 127.0.0.1, and then the job.

The sandbox has a network namespace of its own, with nothing but a loopback interface, so nothing on this
machine or beyond is reachable from it. Syringe listens on one Unix socket per endpoint port (in a
directory bound into the sandbox) and relays each to QEMU's forwarded port on the host. This script, run
by the sandbox's Python as a plain script (`python -I sandbox_relay.py PORT=SOCKET ... -- COMMAND...`, so
it imports nothing of Syringe's), listens on 127.0.0.1:PORT for each, relays every connection to its
socket, and runs the job's command. The job's environment already names 127.0.0.1 and those ports, so it
works unchanged. It runs the command as a child rather than exec'ing it, because the relays must outlive
the exec; its exit status is the command's.

Only the standard library: `pump` is also what Syringe's side of the relay uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

CHUNK = 64 * 1024


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # a half-close passes through, as it would on a direct connection
    except OSError:
        writer.close()


async def pump(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
) -> None:
    """Bytes both ways between two connections until both directions end; then both are closed."""
    try:
        await asyncio.gather(_copy(a_reader, b_writer), _copy(b_reader, a_writer))
    finally:
        for writer in (a_writer, b_writer):
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _to_socket(path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        socket_reader, socket_writer = await asyncio.open_unix_connection(path)
    except OSError:
        writer.close()
        return
    await pump(reader, writer, socket_reader, socket_writer)


def parse(arguments: Sequence[str]) -> tuple[dict[int, str], list[str]]:
    """``PORT=SOCKET ... -- COMMAND...`` -> ({port: socket}, command)."""
    if "--" not in arguments:
        raise SystemExit("usage: sandbox_relay.py [PORT=SOCKET ...] -- COMMAND [ARG ...]")
    split = list(arguments).index("--")
    relays = {}
    for relay in arguments[:split]:
        port, _, path = relay.partition("=")
        relays[int(port)] = path
    command = list(arguments[split + 1 :])
    if not command:
        raise SystemExit("sandbox_relay.py: no command")
    return relays, command


async def run(relays: dict[int, str], command: list[str]) -> int:
    servers = []
    for port, path in relays.items():

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str = path) -> None:
            await _to_socket(path, reader, writer)

        servers.append(await asyncio.start_server(handle, "127.0.0.1", port))
    process = await asyncio.create_subprocess_exec(*command)
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, process.send_signal, number)
    code = await process.wait()
    for server in servers:
        server.close()
    return code if code >= 0 else 128 - code


def main() -> None:
    relays, command = parse(sys.argv[1:])
    try:
        sys.exit(asyncio.run(run(relays, command)))
    except FileNotFoundError as exc:
        print(f"cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
        sys.exit(127)


if __name__ == "__main__":
    main()
