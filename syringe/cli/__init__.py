"""The ``syringe`` command. Its commands come from the modules of this package, and from other packages
through the entry point group ``syringe.commands`` (the API's `serve`): the core never imports the API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from pydantic import ValidationError

from syringe.cli import catalog, images, livelessons, pods

BUILT_IN = (catalog, livelessons, pods, images)
PLUGIN_GROUP = "syringe.commands"
SETTINGS_MODELS = {
    "Settings",
    "LifecycleSettings",
    "PlanSettings",
    "AccessSettings",
    "KubernetesSettings",
    "LocalSettings",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syringe", description="Lesson orchestration for hands-on network labs.")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in BUILT_IN:
        module.register(commands)
    for plugin in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        plugin.load()(commands)
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
        if error.title not in SETTINGS_MODELS:
            raise
        for line in settings_problems(error):
            print(f"error: {line}", file=sys.stderr)
        return 2
    return result
