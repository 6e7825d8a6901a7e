"""Launch benchmarks against a real control plane with the pod stand-in (targets from issue 3).

P1: launch -> READY of a 5-endpoint, 3-connection lesson, divided by the time to create the same objects
    directly with parallel raw API calls (namespace first, then everything else at once), same run.
    Target <= 1.5x.
P2: 100 live lessons launched at once against one Syringe process. Targets: all READY, p95 launch time
    <= 3x a single launch, peak RSS of the Syringe process <= 250 MiB.

    .venv/bin/python bench/launch.py [--kubeconfig FILE] [--repeat 5] [--many 100]

Without --kubeconfig it starts the project's local control plane (scripts/k8s-local.sh) and a stand-in.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.cluster import kubeconfig_or_local  # noqa: E402
from syringe.curriculum import load_curriculum  # noqa: E402
from syringe.curriculum.files import read_lesson_files  # noqa: E402
from syringe.livelessons import LiveLessons, Status  # noqa: E402
from syringe.plan import LiveLessonIdentity, PlanSettings, build_plan  # noqa: E402
from syringe.runtime.kubernetes import KubernetesRuntime, api_client_from  # noqa: E402
from syringe.runtime.kubernetes.creating import Creators  # noqa: E402
from syringe.settings import KubernetesSettings, LifecycleSettings  # noqa: E402
from tests.integration.helpers import StandInProcess  # noqa: E402

FIVE = (
    """\
name: Five endpoints
slug: five
category: tools
endpoints:
"""
    + "".join(
        f"- name: e{i}\n  image: utility\n  presentations: [{{name: cli, port: 22, type: ssh}}]\n" for i in range(5)
    )
    + """\
connections:
- {a: e0, b: e1}
- {a: e1, b: e2}
- {a: e3, b: e4}
stages:
- description: only
"""
)


def curriculum(root: Path) -> Path:
    (root / "curriculum.meta.yaml").write_text("name: bench\n")
    (root / "images/utility").mkdir(parents=True)
    (root / "images/utility/image.meta.yaml").write_text("slug: utility\nsshUser: u\nsshPassword: p\n")
    (root / "lessons/five/stage0").mkdir(parents=True)
    (root / "lessons/five/lesson.meta.yaml").write_text(FIVE)
    (root / "lessons/five/stage0/guide.md").write_text("# five\n")
    return root


def raw_create(api: client.ApiClient, objects: list[dict], pool: ThreadPoolExecutor) -> None:  # type: ignore[type-arg]
    creators = Creators(api)
    creators.for_object(objects[0])()
    list(pool.map(lambda obj: creators.for_object(obj)(), objects[1:]))


async def delete_all(runtime: KubernetesRuntime) -> None:
    """Delete every live lesson of the runtime's instance and wait until the namespaces are gone."""
    records = await runtime.list_live_lessons()
    await asyncio.gather(*(runtime.delete(r.namespace, timeout=300) for r in records))


def wait_until_quiet(api: client.ApiClient) -> None:
    """Namespaces still terminating from an earlier run would load the API server during this one."""
    core = client.CoreV1Api(api)
    for _ in range(600):
        if not [ns for ns in core.list_namespace().items if ns.metadata.deletion_timestamp]:
            return
        time.sleep(0.5)
    raise SystemExit("namespaces are still terminating after 5 minutes; is a stand-in running for their pods?")


async def launch_and_wait(manager: LiveLessons, session: str) -> float:
    start = time.perf_counter()
    ll = await manager.launch(session, "five")
    queue = manager.listen(ll.id)
    try:
        while ll.status not in (Status.READY, Status.ERROR):
            await queue.get()
    finally:
        manager.unlisten(queue)
    if ll.status is not Status.READY:
        raise SystemExit(f"launch failed: {ll.error}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--many", type=int, default=100)
    args = parser.parse_args()
    kubeconfig = kubeconfig_or_local(args.kubeconfig)
    asyncio.run(run(kubeconfig, args.repeat, args.many))


async def run(kubeconfig: str, repeat: int, many: int) -> None:
    api = api_client_from(kubeconfig, pool_size=32)
    crd = yaml.safe_load((REPO / "manifests/prerequisites/network-attachment-definition-crd.yaml").read_text())
    try:
        client.ApiextensionsV1Api(api).create_custom_resource_definition(crd)
    except ApiException as exc:
        if exc.status != 409:
            raise
    standin = StandInProcess(kubeconfig, node="syringe-standin-bench", addresses="127.102.0.0/16")
    standin.start()
    wait_until_quiet(api)
    instance = f"bench{uuid.uuid4().hex[:4]}"
    tmp = tempfile.TemporaryDirectory()
    tree = load_curriculum(curriculum(Path(tmp.name)))
    assert not tree.problems, tree.problems
    settings = LifecycleSettings(max_live_lessons=1000, max_per_session=1)
    runtime = KubernetesRuntime(
        api_client_from(kubeconfig, pool_size=16), instance, KubernetesSettings(address_mode="pod-ip", api_threads=8)
    )
    manager = LiveLessons(tree, runtime, PlanSettings(instance=instance), settings)
    await manager.start()
    try:
        # P1 -------------------------------------------------------------------------------------------
        singles, raws = [], []
        source = tree.lessons["five"]
        pool = ThreadPoolExecutor(16)
        warmup = await launch_and_wait(manager, "warmup")  # the first pod on a fresh node is slower
        print(f"  warm-up launch (not counted): {warmup:.3f} s", flush=True)
        for i in range(repeat):
            singles.append(await launch_and_wait(manager, f"single{i}"))
            print(f"  single {i}: {singles[-1]:.3f} s", flush=True)
            who = LiveLessonIdentity(id=f"raw{i}{uuid.uuid4().hex[:4]}", session="raw", created_at=datetime.now(UTC))
            plan = build_plan(
                source.lesson, tree.images, 0, who, PlanSettings(instance=instance + "r"), read_lesson_files(source)
            )
            start = time.perf_counter()
            await asyncio.to_thread(raw_create, api, plan.objects, pool)
            raws.append(time.perf_counter() - start)
        single, raw = statistics.median(singles), statistics.median(raws)
        print(f"P1 single launch -> READY (5 endpoints, 3 connections): median {single:.3f} s over {repeat}")
        print(f"P1 raw parallel creation of the same {len(plan.objects)} objects: median {raw:.3f} s")
        print(f"P1 ratio: {single / raw:.2f}x (target <= 1.5x)")
        for ll in list(manager.all()):
            await manager.delete(ll.id, wait=False)

        # P2 -------------------------------------------------------------------------------------------
        # Baseline: the control plane's own throughput, creating 100 such lessons with parallel raw calls.
        plans = []
        for i in range(many):
            who = LiveLessonIdentity(id=f"rawm{i}{uuid.uuid4().hex[:4]}", session="raw", created_at=datetime.now(UTC))
            plans.append(
                build_plan(
                    source.lesson, tree.images, 0, who, PlanSettings(instance=instance + "r"), read_lesson_files(source)
                )
            )
        start = time.perf_counter()
        await asyncio.gather(*(asyncio.to_thread(raw_create, api, plan.objects, pool) for plan in plans))
        raw_many = time.perf_counter() - start
        print(f"P2 baseline: raw parallel creation of {many} such lessons' objects: {raw_many:.2f} s")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cpu_before = time.process_time()
        start = time.perf_counter()
        times = await asyncio.gather(*(launch_and_wait(manager, f"many{i}") for i in range(many)))
        wall = time.perf_counter() - start
        p95 = statistics.quantiles(times, n=20)[18]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ready = sum(1 for ll in manager.all() if ll.session.startswith("many") and ll.status is Status.READY)
        print(
            f"P2 {many} launches at once: {ready} READY, all done in {wall:.2f} s "
            f"({wall / raw_many:.2f}x the raw creation baseline)"
        )
        print(
            f"P2 launch time p50 {statistics.median(times):.3f} s, p95 {p95:.3f} s, "
            f"p95 / single = {p95 / single:.2f}x (target <= 3x)"
        )
        print(f"P2 peak RSS of this Syringe process: {peak:.0f} MiB (before P2: {rss_before:.0f} MiB; target <= 250)")
        print(f"P2 CPU time of this Syringe process during P2: {time.process_time() - cpu_before:.2f} s")
        print(f"API calls by verb: {dict(runtime.calls.counts)}")
    finally:
        await manager.stop()
        raw_runtime = KubernetesRuntime(api_client_from(kubeconfig), instance + "r")
        await asyncio.gather(delete_all(runtime), delete_all(raw_runtime))  # while the stand-in still runs
        await raw_runtime.close()
        await runtime.close()
        standin.stop()
        tmp.cleanup()


if __name__ == "__main__":
    main()
