"""P3: an authenticated GET /api/v1/livelessons/{id} of a READY 5-endpoint lesson under wrk -c32, on one
uvicorn worker, against a trivial async endpoint of the same app measured in the same run.

Targets: at least 0.6x the trivial endpoint's requests per second; p99 <= 15 ms; 0 Kubernetes API calls
during the run (counted by the runtime, read from the admin stats). Garbage collection, a background
sweep unrelated to requests, is set to a long interval so that the count covers status reads alone.

    .venv/bin/python bench/status_load.py [--kubeconfig FILE] [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.cluster import kubeconfig_or_local  # noqa: E402
from bench.launch import curriculum  # noqa: E402
from tests.integration.helpers import StandInProcess  # noqa: E402

ADMIN = "bench-admin"


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if found is None and subprocess.run(install, check=False, capture_output=True, env=env).returncode != 0:
        # A fresh machine has no package lists yet.
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, env=env)
        subprocess.run(install, check=False, capture_output=True, env=env)
    found = found or shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is missing and apt-get could not install it")
    return found


def run_wrk(wrk: str, url: str, seconds: int, connections: int, token: str | None) -> tuple[float, float]:
    """(requests per second, p99 latency in ms)."""
    command = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    return rate, float(value) * scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    wrk = ensure_wrk()
    kubeconfig = kubeconfig_or_local(args.kubeconfig)
    standin = StandInProcess(kubeconfig, node="syringe-standin-p3", addresses="127.104.0.0/16")
    standin.start()
    tmp = tempfile.TemporaryDirectory()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "SYRINGE_CURRICULUM": str(curriculum(Path(tmp.name))),
        "SYRINGE_KUBECONFIG": kubeconfig,
        "SYRINGE_PLAN__INSTANCE": f"p3{os.getpid()}",
        "SYRINGE_KUBERNETES__ADDRESS_MODE": "pod-ip",
        "SYRINGE_LIFECYCLE__GC_INTERVAL": "3600",
        "SYRINGE_ADMIN_TOKEN": ADMIN,
    }
    server = subprocess.Popen([sys.executable, str(REPO / "bench/status_server.py"), str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {ADMIN}"}
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            for _ in range(300):
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            token = http.post("/api/v1/sessions").json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            livelesson = http.post("/api/v1/livelessons", json={"lesson": "five"}, headers=auth).json()["id"]
            for _ in range(600):
                if http.get(f"/api/v1/livelessons/{livelesson}", headers=auth).json()["status"] == "READY":
                    break
                time.sleep(0.1)
            view = http.get(f"/api/v1/livelessons/{livelesson}", headers=auth).json()
            assert view["status"] == "READY" and view["total"] == 5, view
            before = http.get("/api/v1/admin/stats", headers=admin).json()["kubernetesCalls"]

            trivial_rate, trivial_p99 = run_wrk(wrk, f"{base}/bench/trivial", args.seconds, args.connections, None)
            status_rate, status_p99 = run_wrk(
                wrk, f"{base}/api/v1/livelessons/{livelesson}", args.seconds, args.connections, token
            )
            after = http.get("/api/v1/admin/stats", headers=admin).json()["kubernetesCalls"]
            calls = sum(after.values()) - sum(before.values())
            http.delete(f"/api/v1/livelessons/{livelesson}", headers=auth)
            time.sleep(1)
        print(f"P3 trivial async endpoint: {trivial_rate:.0f} req/s, p99 {trivial_p99:.2f} ms")
        print(
            f"P3 GET /livelessons/{{id}} (READY, 5 endpoints, authenticated): {status_rate:.0f} req/s, "
            f"p99 {status_p99:.2f} ms"
        )
        print(
            f"P3 ratio: {status_rate / trivial_rate:.2f}x (target >= 0.6x); p99 target <= 15 ms: "
            f"{'met' if status_p99 <= 15 else 'MISSED'}"
        )
        print(f"P3 Kubernetes API calls during the runs: {calls} (target 0)")
    finally:
        server.terminate()
        server.wait(30)
        standin.stop()
        tmp.cleanup()


if __name__ == "__main__":
    main()
