"""Endpoint-access benchmarks (issue 5), against a running Syringe, the real control plane and stand-in.

1. Terminal echo round trip over loopback: a keystroke through WebSocket -> Syringe -> SSH -> PTY and its
   echo back. Target p50 <= 5 ms. Baseline, same run: the same keystroke over a direct SSH session.
2. 200 terminals held open at once by one Syringe process. Target: its peak RSS <= 300 MiB.
3. A probe sweep of 20 presentations finishes in the time of the slowest one, not the sum. Each target
   is a real SSH server behind a TCP relay that delays its first bytes (one by 500 ms, the rest less).

    .venv/bin/python bench/access.py [--kubeconfig FILE] [--echoes 300] [--terminals 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncssh
import httpx
import websockets

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.cluster import kubeconfig_or_local  # noqa: E402
from syringe.access.probes import Target, ssh_probe, sweep  # noqa: E402
from tests.integration.helpers import ServedSyringe, StandInProcess, failure_curriculum, syringe_env  # noqa: E402
from tests.standin.servers import PodServers  # noqa: E402


def rss_peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def echo_times(send: object, receive: object, count: int) -> list[float]:
    times = []
    for i in range(count):
        key = chr(ord("a") + i % 26).encode()
        start = time.perf_counter()
        await send(key)  # type: ignore[operator]
        seen = b""
        while key not in seen:
            seen += await receive()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return times


async def terminal_benchmarks(base: str, pid: int, echoes: int, terminals: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        token = (await http.post("/api/v1/sessions")).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        livelesson = (await http.post("/api/v1/livelessons", json={"lesson": "linux-basics"}, headers=auth)).json()[
            "id"
        ]
        for _ in range(600):
            view = (await http.get(f"/api/v1/livelessons/{livelesson}", headers=auth)).json()
            if view["status"] == "READY":
                break
            await asyncio.sleep(0.1)
    presentation = view["endpoints"][0]["presentations"][0]
    url = base.replace("http://", "ws://") + presentation["access"]["terminalUrl"] + f"&token={token}"

    ws = await websockets.connect(url, max_size=None)
    await ws.send(b"stty -icanon; PS1=''\n")
    await asyncio.sleep(0.5)
    while True:  # drain the prompt
        try:
            await asyncio.wait_for(ws.recv(), 0.2)
        except TimeoutError:
            break

    async def ws_receive() -> bytes:
        message = await ws.recv()
        return message if isinstance(message, bytes) else message.encode()

    via_syringe = await echo_times(ws.send, ws_receive, echoes)
    await ws.close()

    direct = await direct_echo(echoes)
    p50, p95 = statistics.median(via_syringe), statistics.quantiles(via_syringe, n=20)[18]
    d50 = statistics.median(direct)
    print(
        f"terminal echo via Syringe: p50 {p50:.2f} ms, p95 {p95:.2f} ms over {echoes} keystrokes "
        f"(target p50 <= 5 ms: {'met' if p50 <= 5 else 'MISSED'})"
    )
    print(f"terminal echo over direct SSH (baseline): p50 {d50:.2f} ms; ratio {p50 / d50:.2f}x")

    before = rss_peak_mib(pid)
    sockets = []
    for _ in range(terminals):
        sockets.append(await websockets.connect(url, max_size=None))
    await asyncio.sleep(1)
    for sock in sockets:  # each must be a live shell
        await sock.send(b"echo ok\n")
    alive = 0
    for sock in sockets:
        seen = b""
        async with asyncio.timeout(30):
            while b"ok\r\n" not in seen:
                chunk = await sock.recv()
                seen += chunk if isinstance(chunk, bytes) else chunk.encode()
        alive += 1
    peak = rss_peak_mib(pid)
    print(
        f"{alive} terminals open at once: Syringe peak RSS {peak:.0f} MiB (before: {before:.0f} MiB; "
        f"target <= 300 MiB: {'met' if peak <= 300 else 'MISSED'})"
    )
    for sock in sockets:
        await sock.close()


DIRECT: dict[str, str] = {}


async def direct_echo(count: int) -> list[float]:
    conn = await asyncssh.connect(DIRECT["host"], 22, username="u", password="p", known_hosts=None)
    process = await conn.create_process(term_type="xterm", encoding=None)
    process.stdin.write(b"stty -icanon; PS1=''\n")
    await asyncio.sleep(0.5)
    while True:
        try:
            await asyncio.wait_for(process.stdout.read(65536), 0.2)
        except TimeoutError:
            break

    async def send(data: bytes) -> None:
        process.stdin.write(data)

    async def receive() -> bytes:
        return await process.stdout.read(65536)

    times = await echo_times(send, receive, count)
    conn.close()
    return times


async def relay(listen: tuple[str, int], upstream: tuple[str, int], delay: float) -> asyncio.AbstractServer:
    """A TCP relay that holds each connection for ``delay`` seconds before passing bytes either way."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)
        up_reader, up_writer = await asyncio.open_connection(*upstream)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    return await asyncio.start_server(handle, *listen)


async def sweep_benchmark() -> None:
    server = PodServers("127.107.0.1", "sweep", [("ssh-2222", 2222)], asyncssh.generate_private_key("ssh-ed25519"))
    await server.start()
    delays = [0.5] + [0.05 + 0.02 * i for i in range(19)]
    relays = [await relay(("127.107.0.2", 3000 + i), ("127.107.0.1", 2222), d) for i, d in enumerate(delays)]
    targets = {f"ep{i}/cli": Target("127.107.0.2", 3000 + i, "ssh") for i in range(len(delays))}
    loop = asyncio.get_running_loop()
    singles = []
    for target in targets.values():
        start = time.perf_counter()
        await ssh_probe(target.host, target.port, 10)
        singles.append(time.perf_counter() - start)
    start = time.perf_counter()
    await sweep(targets, loop.time() + 30, 10)
    elapsed = time.perf_counter() - start
    print(
        f"probe sweep of {len(targets)} SSH presentations: {elapsed:.3f} s; slowest alone {max(singles):.3f} s; "
        f"one after another {sum(singles):.3f} s; sweep / slowest = {elapsed / max(singles):.2f}x"
    )
    for r in relays:
        r.close()
    await server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig")
    parser.add_argument("--echoes", type=int, default=300)
    parser.add_argument("--terminals", type=int, default=200)
    args = parser.parse_args()
    await sweep_benchmark()
    kubeconfig = await asyncio.to_thread(kubeconfig_or_local, args.kubeconfig)
    os.environ["SYRINGE_TEST_KUBECONFIG"] = kubeconfig
    standin = StandInProcess(kubeconfig, node="syringe-standin-access", addresses="127.108.0.0/16")
    standin.start()
    DIRECT["host"] = "127.108.0.1"  # the first pod's address: the lesson's only endpoint
    with tempfile.TemporaryDirectory() as tmp:
        env = syringe_env(
            f"ab{os.getpid()}",
            failure_curriculum(Path(tmp) / "c"),
            SYRINGE_ACCESS__TERMINALS_PER_LIVELESSON=str(args.terminals + 10),
        )
        server = ServedSyringe(env, Path(tmp) / "serve.log")
        base = await asyncio.to_thread(server.start)
        try:
            assert server.process is not None
            await terminal_benchmarks(base, server.process.pid, args.echoes, args.terminals)
        finally:
            await asyncio.to_thread(server.stop)
            standin.stop()


if __name__ == "__main__":
    asyncio.run(main())
