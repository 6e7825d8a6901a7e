"""Curriculum commands: validate, schema, lessons, render. Nothing here needs a cluster."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syringe.cli.common import CURRICULUM_HELP, curriculum_path, load_or_exit, print_problems
from syringe.curriculum import load_curriculum
from syringe.curriculum.files import read_lesson_files
from syringe.curriculum.jsonschema import all_schemas, metafile_schema
from syringe.curriculum.models import METAFILE_MODELS
from syringe.plan import LiveLessonIdentity, build_plan
from syringe.render import to_yaml_documents
from syringe.settings import Settings


def cmd_validate(args: argparse.Namespace) -> int:
    from syringe.runtime.local.flavours import unserved_ports

    tree = load_curriculum(args.path, Settings().curriculum_policy())
    # Warnings do not fail validation: the lesson can run on a cluster, where its image serves the port.
    warnings = unserved_ports(tree)
    if args.json:
        problems = [p.to_dict() for p in tree.problems]
        print(json.dumps({"ok": tree.ok, "problems": problems, "warnings": [w.to_dict() for w in warnings]}, indent=2))
        return 0 if tree.ok else 1
    if tree.ok:
        print(
            f"{args.path}: ok ({len(tree.lessons)} lessons, {len(tree.images)} images, "
            f"{len(tree.collections)} collections)"
        )
    else:
        print_problems(tree, sys.stdout)
    for warning in warnings:
        print(warning)
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
    tree = load_or_exit(curriculum_path(args))
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
    tree = load_or_exit(curriculum_path(args))
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


def register(commands: Any) -> None:
    validate = commands.add_parser("validate", help="check a curriculum; exit 0 when it has no problems")
    validate.add_argument("path", nargs="?", default="lessons", help="curriculum directory (default: lessons)")
    validate.add_argument("--json", action="store_true", help="print problems as JSON")
    validate.set_defaults(func=cmd_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of the metafiles")
    schema.add_argument("kind", nargs="?", choices=sorted(METAFILE_MODELS), help="one kind (default: all)")
    schema.add_argument("--out", help="write <kind>.schema.json files into this directory")
    schema.set_defaults(func=cmd_schema)

    lessons = commands.add_parser("lessons", help="list the curriculum's lessons")
    lessons.add_argument("--curriculum", help=CURRICULUM_HELP)
    lessons.add_argument("--json", action="store_true")
    lessons.set_defaults(func=cmd_lessons)

    render = commands.add_parser("render", help="print the Kubernetes objects of a live lesson as YAML")
    render.add_argument("--curriculum", help=CURRICULUM_HELP)
    render.add_argument("lesson", help="lesson slug")
    render.add_argument("--stage", type=int, default=0)
    render.add_argument("--id", default="preview", help="live-lesson id")
    render.add_argument("--session", default="cli", help="session id")
    render.add_argument("--created", help="creation time, ISO 8601 (default: now)")
    render.set_defaults(func=cmd_render)
