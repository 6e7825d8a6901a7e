"""`syringe up`, `ls` and `down`: live lessons from the command line, without the web API."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import UTC, datetime

from syringe.curriculum import CurriculumTree
from syringe.errors import SyringeError
from syringe.plan import labels, namespace_name
from syringe.runtime.local.runtime import LocalRuntime
from syringe.runtime.select import runtime_from_settings
from syringe.sessions import LiveLesson, LiveLessonManager, Status
from syringe.settings import Settings

CLI_SESSION = "cli"


def access_lines(ll: LiveLesson, manager: LiveLessonManager) -> list[str]:
    """How to reach each presentation of each endpoint."""
    source = manager.tree.lessons[ll.lesson]
    lines = []
    for endpoint in source.lesson.endpoints:
        host = manager.address_of(ll.id, endpoint.name) or "?"
        image = manager.tree.images.get(endpoint.image)
        user = image.ssh_user if image and image.ssh_user else "root"
        seen = ll.endpoints[endpoint.name].observation
        local = seen.local_ports if seen is not None else {}  # off-cluster: QEMU's forwarded ports
        for presentation in endpoint.presentations:
            port = local.get(presentation.port, presentation.port)
            if presentation.type == "ssh":
                how = f"ssh -p {port} {user}@{host}"
            elif presentation.type == "netconf":
                how = f"ssh -p {port} {user}@{host} -s netconf"
            else:
                how = f"http://{host}:{port}/"
            lines.append(f"  {endpoint.name}/{presentation.name} ({presentation.type}): {how}")
        for port in endpoint.additional_ports:
            lines.append(f"  {endpoint.name}/port {port}: {host}:{local.get(port, port)}")
    if any(image.ssh_password for image in manager.tree.images.values()):
        lines.append("  (passwords are in the images' metafiles)")
    return lines


async def _up(settings: Settings, tree: CurriculumTree, lesson: str, stage: int) -> int:
    runtime = runtime_from_settings(settings, tree)
    manager = LiveLessonManager(tree, runtime, settings.plan, settings.lifecycle)
    try:
        await manager.start()
        changes = manager.listen()
        ll = await manager.launch(CLI_SESSION, lesson, stage)
        print(f"live lesson {ll.id} ({lesson}, stage {stage}) in namespace {ll.namespace}")
        shown: dict[str, str] = {}
        last_status = None
        while True:
            if ll.status != last_status:
                print(f"status {ll.status.value}")
                last_status = ll.status
            for name, endpoint in ll.endpoints.items():
                if shown.get(name) != endpoint.phase:
                    shown[name] = endpoint.phase
                    print(f"  {name}: {endpoint.phase}")
            if ll.status in (Status.READY, Status.ERROR):
                break
            await changes.get()
        if ll.status is Status.ERROR:
            print(f"error: {ll.error}", file=sys.stderr)
            print(f"remove it with: syringe down {ll.id}", file=sys.stderr)
            return 1
        print(f"READY: {ll.healthy}/{ll.total} endpoints reachable. Reach them with:")
        print("\n".join(access_lines(ll, manager)))
        if isinstance(runtime, LocalRuntime):
            print("the VMs run on this machine for as long as this command does: Ctrl-C stops them")
            await _until_interrupted()
            return 0
        print(f"expires {ll.expires_at.isoformat(timespec='seconds')}; remove it with: syringe down {ll.id}")
        return 0
    finally:
        await manager.stop()
        await runtime.close()


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def _ls(settings: Settings) -> int:
    runtime = runtime_from_settings(settings)
    try:
        records = await runtime.list_live_lessons()
    finally:
        await runtime.close()
    header = ("ID", "LESSON", "STAGE", "STATUS", "SESSION", "READY", "EXPIRES")
    rows = []
    now = datetime.now(UTC)
    for record in sorted(records, key=lambda r: r.namespace):
        expires = record.annotations.get(labels.EXPIRES_AT, "")
        try:
            left = int((datetime.fromisoformat(expires) - now).total_seconds() // 60)
            expires = f"{left}m" if left >= 0 else "expired"
        except ValueError:
            pass
        running = sum(1 for e in record.endpoints if e.phase == "Running" and e.ready)
        status = "DELETING" if record.terminating else record.annotations.get(labels.STATUS, "?")
        rows.append(
            (
                record.labels.get(labels.LIVELESSON, "?"),
                record.labels.get(labels.LESSON, "?"),
                record.annotations.get(labels.STAGE, "0"),
                status,
                record.labels.get(labels.SESSION, "?"),
                f"{running}/{len(record.endpoints)}",
                expires,
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


async def _down(settings: Settings, livelesson_id: str) -> int:
    runtime = runtime_from_settings(settings)
    try:
        namespace = namespace_name(settings.plan, livelesson_id)
        records = {r.namespace for r in await runtime.list_live_lessons()}
        if namespace not in records:
            print(f"no live lesson '{livelesson_id}'", file=sys.stderr)
            return 1
        gone = await runtime.delete(namespace, settings.lifecycle.delete_timeout)
    finally:
        await runtime.close()
    print(f"deleted {livelesson_id}" if gone else f"deleting {livelesson_id} (still finishing)")
    return 0


def run(args: argparse.Namespace, settings: Settings, tree: CurriculumTree | None) -> int:
    try:
        if args.command == "up":
            assert tree is not None
            return asyncio.run(_up(settings, tree, args.lesson, args.stage))
        if args.command == "ls":
            return asyncio.run(_ls(settings))
        return asyncio.run(_down(settings, args.id))
    except SyringeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
