"""The ``syringe`` command. Its commands come from the modules of this package, and from other packages
through the entry point group ``syringe.commands`` (the API's `serve`): the core never imports the API."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from pydantic import ValidationError

from syringe.cli import pods

BUILT_IN = ("catalog", "livelessons", "pods", "images")
PLUGIN_GROUP = "syringe.commands"
SETTINGS_MODELS = {
    "Settings",
    "LifecycleSettings",
    "PlanSettings",
    "AccessSettings",
    "KubernetesSettings",
    "LocalSettings",
}


def build_parser(modules: Sequence[str] = BUILT_IN, plugins: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syringe", description="Lesson orchestration for hands-on network labs.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in modules:
        importlib.import_module(f"syringe.cli.{name}").register(commands)
    if plugins:
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
    words = list(sys.argv[1:] if argv is None else argv)
    # What runs inside pods (a configuration Job, a wrapper's launcher) starts without importing the rest of
    # the command: a Job's configurator starts under a CPU limit, often while its lesson's VMs boot.
    in_pod = bool(words) and words[0] in pods.COMMANDS
    args = (build_parser(("pods",), plugins=False) if in_pod else build_parser()).parse_args(words)
    try:
        result: int = args.func(args)
    except ValidationError as error:
        if error.title not in SETTINGS_MODELS:
            raise
        for line in settings_problems(error):
            print(f"error: {line}", file=sys.stderr)
        return 2
    return result
