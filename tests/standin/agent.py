"""The pod stand-in: the kubelet of one Node, on a real API server, with no containers.

- registers a Node and keeps its heartbeat and Lease fresh;
- for every pod the scheduler binds to the node: marks it Running with a podIP from 127.100.0.0/16 and
  starts real servers on that address for its container ports (ssh-*: SSH with a shell, netconf-*: NETCONF
  over SSH, http-*: an HTTP/REST server, anything else: a TCP server);
- fails pods the way a kubelet would, by image name: "pull-fail" gives ErrImagePull then ImagePullBackOff,
  "crash" gives CrashLoopBackOff, "slow" delays start by two seconds, "mute" runs the pod but its ports
  accept connections and never answer, "openssh" serves its ssh ports with Debian's sshd;
- runs configuration Job pods (command `syringe ...`) for real as local processes, with their env (Secret
  references resolved, Service names resolved to pod addresses, as cluster DNS would) and their ConfigMap
  volumes written out, finishing them Succeeded or Failed by exit code with the output's tail as the
  termination message; other Job pods complete (Failed when the image name holds "job-fail");
- finishes graceful deletions, stopping the pod's servers.

Run: python -m tests.standin.agent --kubeconfig FILE [--node NAME] [--addresses CIDR]. Prints "standin ready"
when serving. One stand-in per cluster: it removes other stand-in Nodes when it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import signal
import sys
import threading
from typing import Any

import asyncssh
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from syringe.plan import labels
from tests.standin.jobs import run_job_pod
from tests.standin.servers import PodNamespace, PodServers

log = logging.getLogger("standin")

# On the stand-in's Node: the stand-in's own mark, not one of Syringe's (those are in syringe/plan/labels.py).
STANDIN = "syringe.io/standin"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StandIn:
    def __init__(self, api: client.ApiClient, node: str, addresses: str) -> None:
        self.core = client.CoreV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self.node = node
        self.free = list(ipaddress.ip_network(addresses).hosts())[::-1]
        self.pods: dict[str, tuple[str, PodServers | None]] = {}  # uid -> (address, servers)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ node
    def _conditions(self) -> list[dict[str, str]]:
        t = now()
        return [
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": reason,
                "lastHeartbeatTime": t,
                "lastTransitionTime": t,
            }
            for kind, status, reason in (
                ("Ready", "True", "KubeletReady"),
                ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                ("PIDPressure", "False", "KubeletHasSufficientPID"),
            )
        ]

    def register(self) -> None:
        # A stand-in left over from an earlier run would take pods it can no longer serve.
        for stale in self.core.list_node(label_selector=f"{STANDIN}=true").items:
            if stale.metadata.name != self.node:
                self.core.delete_node(stale.metadata.name)
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node,
                "labels": {
                    "kubernetes.io/hostname": self.node,
                    "kubernetes.io/os": "linux",
                    STANDIN: "true",
                },
            },
        }
        try:
            self.core.create_node(node)
        except ApiException as exc:
            if exc.status != 409:
                raise
        capacity = {"cpu": "2000", "memory": "8Ti", "pods": "5000", "ephemeral-storage": "10Ti"}
        self.core.patch_node_status(
            self.node,
            {
                "status": {
                    "capacity": capacity,
                    "allocatable": capacity,
                    "conditions": self._conditions(),
                    "addresses": [
                        {"type": "InternalIP", "address": "127.0.0.1"},
                        {"type": "Hostname", "address": self.node},
                    ],
                    "nodeInfo": {
                        "kubeletVersion": "v1.20.2-standin",
                        "kubeProxyVersion": "",
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                        "containerRuntimeVersion": "standin://1",
                        "osImage": "standin",
                        "kernelVersion": "",
                        "machineID": "",
                        "systemUUID": "",
                        "bootID": "",
                    },
                }
            },
        )

    def heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(10):
            try:
                self.core.patch_node_status(self.node, {"status": {"conditions": self._conditions()}})
                renew = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                lease = {"spec": {"holderIdentity": self.node, "renewTime": renew, "leaseDurationSeconds": 40}}
                try:
                    self.coordination.patch_namespaced_lease(self.node, "kube-node-lease", lease)
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                    self.coordination.create_namespaced_lease(
                        "kube-node-lease",
                        {
                            "apiVersion": "coordination.k8s.io/v1",
                            "kind": "Lease",
                            "metadata": {"name": self.node, "namespace": "kube-node-lease"},
                            **lease,
                        },
                    )
            except Exception as exc:  # noqa: BLE001 - the API server may be down for a while; keep beating
                log.warning("heartbeat failed: %s", exc)

    # ------------------------------------------------------------------ pods
    def watch_pods(self, stop: threading.Event) -> None:
        selector = f"spec.nodeName={self.node}"
        version = None
        while not stop.is_set():
            try:
                if version is None:
                    listing = self.core.list_pod_for_all_namespaces(field_selector=selector)
                    for pod in listing.items:
                        self._post("MODIFIED", pod)
                    version = listing.metadata.resource_version
                for event in watch.Watch().stream(
                    self.core.list_pod_for_all_namespaces,
                    field_selector=selector,
                    resource_version=version,
                    timeout_seconds=120,
                ):
                    if event["type"] == "ERROR":
                        version = None
                        break
                    version = event["object"].metadata.resource_version
                    self._post(event["type"], event["object"])
            except Exception as exc:  # noqa: BLE001 - reconnect after outages
                log.warning("pod watch lost: %s", exc)
                version = None
                stop.wait(1)

    def _post(self, kind: str, pod: Any) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, pod))

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        stop = threading.Event()
        await asyncio.to_thread(self.register)
        threading.Thread(target=self.heartbeat, args=(stop,), daemon=True).start()
        threading.Thread(target=self.watch_pods, args=(stop,), daemon=True).start()
        print("standin ready", flush=True)
        try:
            while True:
                kind, pod = await self.queue.get()
                task = asyncio.create_task(self.handle(kind, pod))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        finally:
            stop.set()

    async def handle(self, kind: str, pod: Any) -> None:
        uid = pod.metadata.uid
        try:
            if kind == "DELETED":
                await self.release(uid)
            elif pod.metadata.deletion_timestamp:
                await self.release(uid)
                await asyncio.to_thread(self._delete_now, pod)
            elif uid not in self.pods and pod.status.phase in (None, "Pending"):
                self.pods[uid] = ("", None)
                try:
                    await self.start_pod(pod)
                except OSError as exc:  # a server could not bind: fail the pod visibly, like a kubelet would
                    await self._patch_status(pod, {"phase": "Failed", "reason": "StandInError", "message": str(exc)})
                    raise
        except Exception as exc:  # noqa: BLE001 - one pod's trouble must not stop the node
            log.warning("pod %s/%s: %s", pod.metadata.namespace, pod.metadata.name, exc)

    def _delete_now(self, pod: Any) -> None:
        try:
            self.core.delete_namespaced_pod(
                pod.metadata.name,
                pod.metadata.namespace,
                grace_period_seconds=0,
                body=client.V1DeleteOptions(grace_period_seconds=0, preconditions={"uid": pod.metadata.uid}),
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    async def shutdown(self) -> None:
        for uid in list(self.pods):
            await self.release(uid)

    async def release(self, uid: str) -> None:
        address, servers = self.pods.pop(uid, ("", None))
        if servers is not None:
            await servers.stop()
        if address:
            self.free.append(ipaddress.ip_address(address))

    async def _patch_status(self, pod: Any, status: dict[str, Any]) -> None:
        await asyncio.to_thread(
            self.core.patch_namespaced_pod_status, pod.metadata.name, pod.metadata.namespace, {"status": status}
        )

    @staticmethod
    def _container_status(
        pod: Any, state: dict[str, Any], ready: bool = False, restarts: int = 0, last: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return [
            {
                "name": c.name,
                "image": c.image,
                "imageID": "",
                "ready": ready,
                "restartCount": restarts,
                "started": ready,
                "state": state,
                "lastState": last or {},
            }
            for c in pod.spec.containers
        ]

    async def start_pod(self, pod: Any) -> None:
        image = pod.spec.containers[0].image
        owner_kinds = {ref.kind for ref in pod.metadata.owner_references or []}
        if "pull-fail" in image:
            await self._fail_pull(pod, image)
            return
        if "slow" in image:
            await asyncio.sleep(2)
        address = str(self.free.pop())
        servers = None
        if "Job" not in owner_kinds and "crash" not in image:
            ports = [
                (p.name or f"tcp-{p.container_port}", p.container_port)
                for c in pod.spec.containers
                for p in c.ports or []
            ]
            networks = json.loads((pod.metadata.annotations or {}).get(labels.NETWORKS, "[]"))
            namespace = PodNamespace(
                pod.spec.hostname or pod.metadata.name,
                [n["interface"] for n in networks],
                {n["interface"]: list(n.get("ips") or []) for n in networks},
            )
            servers = PodServers(
                address,
                pod.metadata.name,
                ports,
                self.host_key,
                mute="mute" in image,
                openssh="openssh" in image,
                namespace=None if "openssh" in image else namespace,
            )
            await servers.start()
        self.pods[pod.metadata.uid] = (address, servers)
        base: dict[str, Any] = {
            "hostIP": "127.0.0.1",
            "podIP": address,
            "podIPs": [{"ip": address}],
            "startTime": now(),
        }
        if "crash" in image:
            terminated = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now(), "finishedAt": now()}}
            waiting = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off 10s restarting failed container={pod.spec.containers[0].name}",
                }
            }
            await self._patch_status(
                pod,
                {
                    **base,
                    "phase": "Running",
                    "conditions": self._conditions_for(False),
                    "containerStatuses": self._container_status(pod, waiting, restarts=3, last=terminated),
                },
            )
            return
        running = {"running": {"startedAt": now()}}
        await self._patch_status(
            pod,
            {
                **base,
                "phase": "Running",
                "conditions": self._conditions_for(True),
                "containerStatuses": self._container_status(pod, running, ready=True),
            },
        )
        if "Job" in owner_kinds:
            command = pod.spec.containers[0].command or []
            message = ""
            if command[:1] == ["syringe"]:  # a configurator: run it for real, as a kubelet would
                outcome = await run_job_pod(self.core, pod)
                code = outcome.exit_code
                log.info("job pod %s/%s exited %d", pod.metadata.namespace, pod.metadata.name, code)
                failed = code != 0
                # As a kubelet: the termination log's content, else (FallbackToLogsOnError) the output's tail.
                message = outcome.reported(pod.spec.containers[0].termination_message_policy)
            else:
                await asyncio.sleep(0.2)
                failed = "job-fail" in image
                code = 1 if failed else 0
            state = {
                "terminated": {
                    "exitCode": code,
                    "reason": "Error" if failed else "Completed",
                    "message": message,
                    "startedAt": now(),
                    "finishedAt": now(),
                }
            }
            await self._patch_status(
                pod,
                {
                    "phase": "Failed" if failed else "Succeeded",
                    "conditions": self._conditions_for(False),
                    "containerStatuses": self._container_status(pod, state),
                },
            )

    @staticmethod
    def _conditions_for(ready: bool) -> list[dict[str, str]]:
        status = "True" if ready else "False"
        t = now()
        return [
            {"type": kind, "status": s, "lastTransitionTime": t}
            for kind, s in (
                ("PodScheduled", "True"),
                ("Initialized", "True"),
                ("ContainersReady", status),
                ("Ready", status),
            )
        ]

    async def _fail_pull(self, pod: Any, image: str) -> None:
        message = f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": not found'
        await self._patch_status(
            pod,
            {
                "phase": "Pending",
                "hostIP": "127.0.0.1",
                "startTime": now(),
                "containerStatuses": self._container_status(
                    pod, {"waiting": {"reason": "ErrImagePull", "message": message}}
                ),
            },
        )
        await asyncio.sleep(1)
        await self._patch_status(
            pod,
            {
                "containerStatuses": self._container_status(
                    pod, {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}}
                )
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", default="syringe-standin")
    parser.add_argument("--addresses", default="127.100.0.0/16", help="loopback range for pod IPs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s standin %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    api = config.new_client_from_config(config_file=args.kubeconfig)
    standin = StandIn(api, args.node, args.addresses)
    loop = asyncio.new_event_loop()
    task = loop.create_task(standin.run())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        loop.run_until_complete(task)
    loop.run_until_complete(standin.shutdown())  # leave no server behind (sshd runs as its own process)


if __name__ == "__main__":
    main()
