"""The ``syringe`` command: validate, schema, lessons, render, serve."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from syringe.curriculum import CurriculumTree, load_curriculum
from syringe.curriculum.files import read_lesson_files
from syringe.curriculum.jsonschema import all_schemas, metafile_schema
from syringe.curriculum.models import METAFILE_MODELS
from syringe.plan import LiveLessonIdentity, build_plan
from syringe.render import to_yaml_documents
from syringe.settings import Settings


def _print_problems(tree: CurriculumTree, stream: TextIO | None = None) -> None:
    out = stream or sys.stderr
    for problem in tree.problems:
        print(problem, file=out)
    count = len(tree.problems)
    print(f"{count} problem{'s' if count != 1 else ''} in {tree.root}", file=out)


def _curriculum_path(args: argparse.Namespace) -> Path:
    return Path(args.curriculum) if args.curriculum else Settings().curriculum


def _load_or_exit(path: Path) -> CurriculumTree:
    tree = load_curriculum(path)
    if tree.problems:
        _print_problems(tree)
        raise SystemExit(1)
    return tree


def cmd_validate(args: argparse.Namespace) -> int:
    tree = load_curriculum(args.path)
    if args.json:
        print(json.dumps({"ok": tree.ok, "problems": [p.to_dict() for p in tree.problems]}, indent=2))
    elif tree.ok:
        print(
            f"{args.path}: ok ({len(tree.lessons)} lessons, {len(tree.images)} images, "
            f"{len(tree.collections)} collections)"
        )
    else:
        _print_problems(tree, sys.stdout)
    return 0 if tree.ok else 1


def cmd_schema(args: argparse.Namespace) -> int:
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for kind, schema in all_schemas().items():
            (out / f"{kind}.schema.json").write_text(json.dumps(schema, indent=2) + "\n")
            print(out / f"{kind}.schema.json")
        return 0
    document = metafile_schema(args.kind) if args.kind else all_schemas()
    print(json.dumps(document, indent=2))
    return 0


def cmd_lessons(args: argparse.Namespace) -> int:
    tree = _load_or_exit(_curriculum_path(args))
    rows = [
        (s.lesson.slug, s.lesson.category, str(len(s.lesson.endpoints)), str(len(s.lesson.stages)), s.lesson.name)
        for s in sorted(tree.lessons.values(), key=lambda s: s.lesson.slug)
    ]
    if args.json:
        print(
            json.dumps(
                [dict(zip(("slug", "category", "endpoints", "stages", "name"), r, strict=True)) for r in rows], indent=2
            )
        )
        return 0
    header = ("SLUG", "CATEGORY", "ENDPOINTS", "STAGES", "NAME")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)), row[4])
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    tree = _load_or_exit(_curriculum_path(args))
    if args.lesson not in tree.lessons:
        print(f"unknown lesson '{args.lesson}'; `syringe lessons` lists them", file=sys.stderr)
        return 1
    source = tree.lessons[args.lesson]
    created = datetime.fromisoformat(args.created) if args.created else datetime.now(UTC)
    try:
        who = LiveLessonIdentity(id=args.id, session=args.session, created_at=created)
        plan = build_plan(source.lesson, tree.images, args.stage, who, Settings().plan, read_lesson_files(source))
    except ValueError as exc:
        print(f"cannot render: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(to_yaml_documents(plan.objects))
    return 0


def _runtime_problems(settings: Settings, tree: CurriculumTree) -> list[str]:
    """The start-up checks, before serving. No cluster and no local VMs is not a problem: the catalog serves."""
    import asyncio

    from syringe.errors import RuntimeUnavailable
    from syringe.runtime.select import cluster_configured, runtime_from_settings

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


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import CurriculumRefused, create_app

    overrides = {"curriculum": args.curriculum} if args.curriculum else {}
    settings = Settings(**overrides)
    try:
        app = create_app(settings)
    except CurriculumRefused as refused:
        _print_problems(refused.tree)
        print("refusing to serve a curriculum with problems", file=sys.stderr)
        return 1
    problems = _runtime_problems(settings, app.state.catalog.tree)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print("refusing to serve: live lessons cannot run here", file=sys.stderr)
        return 1
    from syringe.observability.logs import configure

    configure()
    # No access log: browser terminals and proxied pages carry the learner's token in their URL.
    uvicorn.run(
        app, host=args.host or settings.host, port=args.port or settings.port, log_config=None, access_log=False
    )
    return 0


def _live_settings(args: argparse.Namespace) -> Settings:
    overrides = {"kubeconfig": args.kubeconfig} if getattr(args, "kubeconfig", None) else {}
    return Settings(**overrides)


def cmd_up(args: argparse.Namespace) -> int:
    from syringe import cli_live

    tree = _load_or_exit(_curriculum_path(args))
    if args.lesson not in tree.lessons:
        print(f"unknown lesson '{args.lesson}'; `syringe lessons` lists them", file=sys.stderr)
        return 1
    return cli_live.run(args, _live_settings(args), tree)


def cmd_ls_or_down(args: argparse.Namespace) -> int:
    from syringe import cli_live

    return cli_live.run(args, _live_settings(args), None)


def cmd_configure(args: argparse.Namespace) -> int:
    """The configurator image's entrypoint: configure one endpoint for one stage, then exit 0 or 1."""
    from syringe.configure.runners import RUNNERS, run_napalm
    from syringe.configure.target import ConfigTarget, ConfigureError

    try:
        target = ConfigTarget.from_environment(args.endpoint, args.stage)
        if args.type == "napalm":
            run_napalm(target, args.timeout, args.napalm_mode)
        else:
            RUNNERS[args.type](target, args.timeout)
    except ConfigureError as exc:
        print(f"error: configuring {args.endpoint} for stage {args.stage} ({args.type}): {exc}", file=sys.stderr)
        return 1
    print(f"configured {args.endpoint} for stage {args.stage} ({args.type})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """The verification Job's entrypoint: run a stage's learner checks; failed checks are results."""
    from syringe.configure.target import ConfigureError
    from syringe.configure.verify import verify

    try:
        results = verify(args.stage, args.timeout)
    except ConfigureError as exc:
        print(f"error: verifying stage {args.stage}: {exc}", file=sys.stderr)
        return 1
    for result in results:
        print(f"{'PASS' if result['passed'] else 'FAIL'} {result['name']}: {result['message']}")
    return 0


def cmd_image_build(args: argparse.Namespace) -> int:
    """Build an image the local runtime boots (today: the tiny Linux VM) into the cache."""
    from syringe.runtime.local.tinylinux import ImageBuildError, timed_build

    try:
        image, seconds = timed_build(Path(args.cache) if args.cache else None, args.force)
    except ImageBuildError as exc:
        print(f"error: building {args.name}: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        size = (image.kernel.stat().st_size + image.initrd.stat().st_size) / 2**20
        print(f"{args.name}: {image.kernel} and {image.initrd} ({size:.1f} MiB) in {seconds:.1f}s")
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    """The QEMU wrapper container's entrypoint (stage 1 of an image), or its readiness probe."""
    from syringe.runtime.wrapper import launcher

    if args.health:
        return launcher.health(os.environ.get("SYRINGE_VM_HEALTH_FILE", launcher.HEALTH_FILE))
    return launcher.main()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syringe", description="Lesson orchestration for hands-on network labs.")
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check a curriculum; exit 0 when it has no problems")
    validate.add_argument("path", nargs="?", default="lessons", help="curriculum directory (default: lessons)")
    validate.add_argument("--json", action="store_true", help="print problems as JSON")
    validate.set_defaults(func=cmd_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of the metafiles")
    schema.add_argument("kind", nargs="?", choices=sorted(METAFILE_MODELS), help="one kind (default: all)")
    schema.add_argument("--out", help="write <kind>.schema.json files into this directory")
    schema.set_defaults(func=cmd_schema)

    for name, func, text in (
        ("lessons", cmd_lessons, "list the curriculum's lessons"),
        ("render", cmd_render, "print the Kubernetes objects of a live lesson as YAML"),
        ("serve", cmd_serve, "serve the REST API"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--curriculum", help="curriculum directory (default: $SYRINGE_CURRICULUM or lessons)")
        sub.set_defaults(func=func)
        if name == "lessons":
            sub.add_argument("--json", action="store_true")
        if name == "render":
            sub.add_argument("lesson", help="lesson slug")
            sub.add_argument("--stage", type=int, default=0)
            sub.add_argument("--id", default="preview", help="live-lesson id")
            sub.add_argument("--session", default="cli", help="session id")
            sub.add_argument("--created", help="creation time, ISO 8601 (default: now)")
        if name == "serve":
            sub.add_argument("--host")
            sub.add_argument("--port", type=int)

    up = commands.add_parser("up", help="launch a live lesson and wait until it is ready (no web API needed)")
    up.add_argument("lesson", help="lesson slug")
    up.add_argument("--stage", type=int, default=0)
    up.add_argument("--curriculum", help="curriculum directory (default: $SYRINGE_CURRICULUM or lessons)")
    up.set_defaults(func=cmd_up)
    ls = commands.add_parser("ls", help="list live lessons in the cluster")
    ls.set_defaults(func=cmd_ls_or_down)
    down = commands.add_parser("down", help="delete a live lesson")
    down.add_argument("id", help="live-lesson id, as `syringe ls` shows")
    down.set_defaults(func=cmd_ls_or_down)
    configure = commands.add_parser("configure", help="configure one endpoint for one stage (configuration Jobs)")
    configure.add_argument("--type", required=True, choices=["python", "ansible", "napalm", "netconf"])
    configure.add_argument("--endpoint", required=True)
    configure.add_argument("--stage", type=int, required=True)
    configure.add_argument("--timeout", type=float, default=300.0, help="seconds for the whole configuration")
    configure.add_argument("--napalm-mode", choices=["merge", "replace"], default="merge")
    configure.set_defaults(func=cmd_configure)
    launch = commands.add_parser("launch", help="run as PID 1 of a QEMU wrapper container (settings from env)")
    launch.add_argument("--health", action="store_true", help="the readiness probe: exit 0 when the VM is ready")
    launch.set_defaults(func=cmd_launch)
    image = commands.add_parser("image", help="images of the local runtime")
    image_commands = image.add_subparsers(dest="image_command", required=True)
    build = image_commands.add_parser("build", help="build an image into the cache (quick when it is there)")
    build.add_argument("name", choices=["tiny-linux"], help="tiny-linux: the VM standing in for Linux containers")
    build.add_argument("--cache", help="cache directory (default: $SYRINGE_CACHE_DIR, /var/cache/syringe as root, "
                       "else ~/.cache/syringe)")  # fmt: skip
    build.add_argument("--force", action="store_true", help="build again even when cached")
    build.add_argument("--quiet", action="store_true", help="print nothing on success")
    build.set_defaults(func=cmd_image_build)
    verify = commands.add_parser("verify", help="run a stage's learner checks (verification Jobs)")
    verify.add_argument("--stage", type=int, required=True)
    verify.add_argument("--timeout", type=float, default=60.0, help="seconds per check")
    verify.set_defaults(func=cmd_verify)
    for sub in (up, ls, down):
        sub.add_argument("--kubeconfig", help="cluster to use (default: $SYRINGE_KUBECONFIG or $KUBECONFIG)")
    return parser


def settings_problems(error: ValidationError) -> list[str]:
    """A settings error as the environment variable an operator set: SYRINGE_LIFECYCLE__TTL_SECONDS, ..."""
    lines = []
    for item in error.errors():
        name = "SYRINGE_" + "__".join(str(part).upper() for part in item["loc"])
        lines.append(f"invalid setting {name}={item.get('input')!r}: {item['msg']}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except ValidationError as error:
        if error.title not in ("Settings", "LifecycleSettings", "PlanSettings", "AccessSettings"):
            raise
        for line in settings_problems(error):
            print(f"error: {line}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    raise SystemExit(main())
