"""`syringe up`, `ls` and `down`: live lessons from the command line, without the web API; and the start-up
checks `syringe serve` runs before it serves."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import UTC, datetime
from typing import Any

from syringe.cli.common import CURRICULUM_HELP, curriculum_path, load_or_exit
from syringe.curriculum import CurriculumTree
from syringe.errors import RuntimeUnavailable, SyringeError
from syringe.livelessons import LiveLesson, LiveLessons, Status
from syringe.plan import labels, namespace_name
from syringe.runtime.base import ProcessBound
from syringe.runtime.select import cluster_configured, runtime_from_settings
from syringe.settings import Settings

CLI_SESSION = "cli"


def access_lines(ll: LiveLesson, manager: LiveLessons) -> list[str]:
    """How to reach each presentation of each endpoint, from where this command runs."""
    source = manager.tree.lessons[ll.lesson]
    lines = []
    for endpoint in source.lesson.endpoints:
        seen = ll.endpoints[endpoint.name].observation
        reach = seen.reach if seen is not None else None
        host = reach.host if reach is not None else "?"
        image = manager.tree.images.get(endpoint.image)
        user = image.ssh_user if image and image.ssh_user else "root"
        for presentation in endpoint.presentations:
            port = reach.port(presentation.port) if reach is not None else presentation.port
            if presentation.type == "ssh":
                how = f"ssh -p {port} {user}@{host}"
            elif presentation.type == "netconf":
                how = f"ssh -p {port} {user}@{host} -s netconf"
            else:
                how = f"http://{host}:{port}/"
            lines.append(f"  {endpoint.name}/{presentation.name} ({presentation.type}): {how}")
        for port in endpoint.additional_ports:
            lines.append(f"  {endpoint.name}/port {port}: {host}:{reach.port(port) if reach is not None else port}")
    if any(image.ssh_password for image in manager.tree.images.values()):
        lines.append("  (passwords are in the images' metafiles)")
    return lines


async def _up(settings: Settings, tree: CurriculumTree, lesson: str, stage: int) -> int:
    runtime = runtime_from_settings(settings, tree)
    manager = LiveLessons(tree, runtime, settings.plan, settings.lifecycle)
    try:
        await manager.start()
        ll = await manager.launch(CLI_SESSION, lesson, stage)
        changes = manager.listen(ll.id)
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
        if isinstance(runtime, ProcessBound):
            print(f"{runtime.process_bound()}: Ctrl-C stops them")
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


def runtime_problems(settings: Settings, tree: CurriculumTree) -> list[str]:
    """The start-up checks, before serving. No cluster and no local VMs is not a problem: the catalog serves."""
    if not cluster_configured(settings) and not settings.local.enabled:
        print("no cluster configured and local VMs disabled: serving the catalog; live lessons answer 503",
              file=sys.stderr)  # fmt: skip
        return []

    async def check() -> list[str]:
        runtime = runtime_from_settings(settings, tree)
        try:
            return await runtime.check()
        finally:
            if cluster_configured(settings):
                await runtime.close()

    try:
        return asyncio.run(check())
    except RuntimeUnavailable as exc:
        return [str(exc)]


def _live_settings(args: argparse.Namespace) -> Settings:
    overrides = {"kubeconfig": args.kubeconfig} if getattr(args, "kubeconfig", None) else {}
    return Settings(**overrides)


def cmd_up(args: argparse.Namespace) -> int:
    tree = load_or_exit(curriculum_path(args))
    if args.lesson not in tree.lessons:
        print(f"unknown lesson '{args.lesson}'; `syringe lessons` lists them", file=sys.stderr)
        return 1
    return run(args, _live_settings(args), tree)


def cmd_ls_or_down(args: argparse.Namespace) -> int:
    return run(args, _live_settings(args), None)


def register(commands: Any) -> None:
    up = commands.add_parser("up", help="launch a live lesson and wait until it is ready (no web API needed)")
    up.add_argument("lesson", help="lesson slug")
    up.add_argument("--stage", type=int, default=0)
    up.add_argument("--curriculum", help=CURRICULUM_HELP)
    up.set_defaults(func=cmd_up)
    ls = commands.add_parser("ls", help="list live lessons in the cluster")
    ls.set_defaults(func=cmd_ls_or_down)
    down = commands.add_parser("down", help="delete a live lesson")
    down.add_argument("id", help="live-lesson id, as `syringe ls` shows")
    down.set_defaults(func=cmd_ls_or_down)
    for sub in (up, ls, down):
        sub.add_argument("--kubeconfig", help="cluster to use (default: $SYRINGE_KUBECONFIG or $KUBECONFIG)")
