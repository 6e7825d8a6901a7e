"""Local-runtime benchmarks (targets from issue 7), on real QEMU with the tiny Linux VM.

B1: boot to the first SSH command of one VM (QEMU start -> ready line -> `true` over SSH). Target <= 8 s
    under TCG.
B2: a 3-VM lesson launched through Syringe (LiveLessons + LocalRuntime: plan, VMs, links, probes),
    launch -> READY, divided by a 1-VM lesson's launch -> READY measured in the same run. Target < 1.5x,
    which needs the VMs to start in parallel. Measured with warm boots (after each shape's first launch
    made its template); the baseline boots bare VMs cold, with no Syringe.
B3: memory per idle VM, three VMs idling side by side: RSS, private (anonymous) memory, and PSS (shared
    pages, such as the kernel image every VM maps, split among them). Target <= guest RAM + 70 MB. Also
    tries smaller guest RAM sizes to find the smallest that boots.

    .venv/bin/python bench/local_vms.py [--repeat 3] [--idle 10]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncssh

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from syringe.curriculum import load_curriculum  # noqa: E402
from syringe.errors import VmFailed  # noqa: E402
from syringe.livelessons import LiveLessons, Status  # noqa: E402
from syringe.plan import PlanSettings  # noqa: E402
from syringe.qemu.command import KernelBoot, VmSpec, guest_parameters  # noqa: E402
from syringe.qemu.process import VmProcess, choose_accel  # noqa: E402
from syringe.runtime.local.host import free_port  # noqa: E402
from syringe.runtime.local.runtime import LocalRuntime  # noqa: E402
from syringe.runtime.local.tinylinux import build_tiny_linux  # noqa: E402
from syringe.settings import LifecycleSettings, LocalSettings  # noqa: E402

USER, PASSWORD = "antidote", "antidotepassword"


async def boot_to_ssh(memory: int, workdir: Path) -> tuple[float, float]:
    """(seconds to the first SSH command, seconds to the ready line)."""
    tiny = build_tiny_linux()
    port = free_port()
    parameters = guest_parameters("bench", (), USER, PASSWORD)
    spec = VmSpec(
        name="syringe-bench.vm",
        memory_mib=memory,
        cpus=1,
        boot=KernelBoot(str(tiny.kernel), str(tiny.initrd), parameters),
        accel=choose_accel("auto"),
        forwards={22: port},
        console=str(workdir / f"console-{memory}.log"),
    )
    vm = VmProcess(spec, "qemu-system-x86_64", "nobody")
    started = time.perf_counter()
    await vm.start()
    try:
        ready = await vm.wait_ready(60)
        async with asyncssh.connect(
            "127.0.0.1", port, username=USER, password=PASSWORD, known_hosts=None, client_keys=None
        ) as connection:
            result = await connection.run("true", timeout=30)
        assert result.exit_status == 0
        return time.perf_counter() - started, ready
    finally:
        await vm.stop()


def _memory(pid: int) -> tuple[int, int, int]:
    """(RSS, anonymous RSS, PSS) of a process in MiB. PSS shares the kernel image, QEMU's code and the
    page cache fairly among the VMs that map them."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if line.startswith("Rss")}
    fields["VmRSS"] = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
    pss = sum(int(line.split()[1]) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
              if line.startswith("Pss:"))  # fmt: skip
    return fields["VmRSS"] // 1024, fields["RssAnon"] // 1024, pss // 1024


async def idle_memory(memory: int, count: int, workdir: Path, idle: float) -> tuple[int, int, int]:
    """Boot ``count`` VMs, let them idle, and return the median per-VM (RSS, anonymous, PSS)."""
    tiny = build_tiny_linux()
    vms = []
    for index in range(count):
        spec = VmSpec(
            name=f"syringe-bench.idle{index}",
            memory_mib=memory,
            cpus=1,
            boot=KernelBoot(str(tiny.kernel), str(tiny.initrd), guest_parameters(f"idle{index}", ())),
            accel=choose_accel("auto"),
            console=str(workdir / f"idle{index}.log"),
        )
        vms.append(VmProcess(spec, "qemu-system-x86_64", "nobody"))
    try:
        for vm in vms:
            await vm.start()
        for vm in vms:
            await vm.wait_ready(120)
        await asyncio.sleep(idle)
        readings = [await asyncio.to_thread(_memory, vm.process.pid) for vm in vms if vm.process is not None]
    finally:
        for vm in vms:
            await vm.stop()
    return tuple(int(statistics.median(r[i] for r in readings)) for i in range(3))  # type: ignore[return-value]


async def bare_boots(count: int, workdir: Path) -> float:
    """Seconds until ``count`` VMs started at once have all printed their ready line: QEMU alone, no
    Syringe, the floor for B2 on this machine."""
    tiny = build_tiny_linux()
    vms = [
        VmProcess(
            VmSpec(
                name=f"syringe-bench.bare{index}",
                memory_mib=128,
                cpus=1,
                boot=KernelBoot(str(tiny.kernel), str(tiny.initrd), guest_parameters(f"bare{index}", ())),
                accel=choose_accel("auto"),
                console=str(workdir / f"bare{index}.log"),
            ),
            "qemu-system-x86_64",
            "nobody",
        )
        for index in range(count)
    ]
    started = time.perf_counter()
    try:
        for vm in vms:
            await vm.start()
        await asyncio.gather(*(vm.wait_ready(120) for vm in vms))
        return time.perf_counter() - started
    finally:
        await asyncio.gather(*(vm.stop() for vm in vms))


def _curriculum(root: Path) -> Path:
    shutil.copytree(REPO / "lessons", root)
    for slug, endpoints, links in (
        ("bench-one", ["h1"], []),
        ("bench-three", ["h1", "h2", "h3"], [("h1", "h2"), ("h2", "h3"), ("h3", "h1")]),
    ):
        (root / "lessons" / slug / "stage0").mkdir(parents=True)
        (root / "lessons" / slug / "stage0" / "guide.md").write_text("# bench\n")
        text = f"name: {slug}\nslug: {slug}\ncategory: tools\nendpoints:\n"
        text += "".join(
            f"- name: {e}\n  image: utility\n  presentations: [{{name: cli, port: 22, type: ssh}}]\n" for e in endpoints
        )
        if links:
            text += "connections:\n" + "".join(f"- {{a: {a}, b: {b}}}\n" for a, b in links)
        (root / "lessons" / slug / "lesson.meta.yaml").write_text(text + "stages:\n- description: only\n")
    return root


async def launch_seconds(manager: LiveLessons, lesson: str, session: str) -> float:
    started = time.perf_counter()
    ll = await manager.launch(session, lesson)
    changes = manager.listen(ll.id)
    try:
        while ll.status not in (Status.READY, Status.ERROR):
            await changes.get()
    finally:
        manager.unlisten(changes)
    if ll.status is not Status.READY:
        raise RuntimeError(f"{lesson}: {ll.error}")
    seconds = time.perf_counter() - started
    await manager.delete(ll.id, session)
    return seconds


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    accel = choose_accel("auto")
    print(f"accelerator: {accel}; {args.repeat} runs each")

    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        await asyncio.to_thread(workdir.chmod, 0o755)
        firsts, readies = [], []
        for _ in range(args.repeat):
            first, ready = await boot_to_ssh(128, workdir)
            firsts.append(first)
            readies.append(ready)
        print(
            f"B1 boot to first SSH command: median {statistics.median(firsts):.2f} s "
            f"(min {min(firsts):.2f}, max {max(firsts):.2f}; ready line at {statistics.median(readies):.2f} s) "
            "target <= 8 s"
        )

        tree = load_curriculum(_curriculum(workdir / "curriculum"))
        settings = LocalSettings(state_dir=workdir / "state")
        runtime = LocalRuntime(tree.root, tree.images, "bench", settings)
        manager = LiveLessons(tree, runtime, PlanSettings(instance="bench"), LifecycleSettings())
        await manager.start()
        try:
            session, _ = await manager.learners.create()
            # The first launch of each shape also makes its warm-boot template (a cold boot, saved).
            first_one = await launch_seconds(manager, "bench-one", session.id)
            first_three = await launch_seconds(manager, "bench-three", session.id)
            print(
                f"B2 first launches (making the warm-boot templates): 1 VM {first_one:.2f} s, 3 VMs {first_three:.2f} s"
            )
            ones, threes = [], []
            for _ in range(args.repeat):
                ones.append(await launch_seconds(manager, "bench-one", session.id))
                threes.append(await launch_seconds(manager, "bench-three", session.id))
        finally:
            await manager.stop()
            await runtime.close()
        one, three = statistics.median(ones), statistics.median(threes)
        print(
            f"B2 launch -> READY: 1 VM {one:.2f} s, 3 VMs with 3 links {three:.2f} s: "
            f"{three / one:.2f}x (target < 1.5x)"
        )
        bare_one = statistics.median([await bare_boots(1, workdir) for _ in range(args.repeat)])
        bare_three = statistics.median([await bare_boots(3, workdir) for _ in range(args.repeat)])
        print(
            f"B2 baseline, QEMU alone to the ready line: 1 VM {bare_one:.2f} s, 3 VMs {bare_three:.2f} s: "
            f"{bare_three / bare_one:.2f}x"
        )

        sizes = []
        for memory in (128, 96, 80):
            try:
                await boot_to_ssh(memory, workdir)
            except (VmFailed, OSError, asyncssh.Error, TimeoutError) as exc:
                print(f"B3 guest RAM {memory} MiB: does not boot ({type(exc).__name__})")
                continue
            sizes.append(memory)
        rss, anon, pss = await idle_memory(128, 3, workdir, args.idle)
        print(
            f"B3 3 idle VMs of 128 MiB, per VM: RSS {rss} MiB, private (anonymous) {anon} MiB = guest + {anon - 128}, "
            f"PSS {pss} MiB = guest + {pss - 128} (target <= guest + 70)"
        )
        print(f"smallest guest RAM that booted: {min(sizes) if sizes else 'none'} MiB")


if __name__ == "__main__":
    asyncio.run(main())
