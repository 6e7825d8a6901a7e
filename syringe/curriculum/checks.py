"""Checks beyond the schema: within a lesson, across the curriculum, and against the lesson's files."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable, Mapping

from syringe.curriculum.models import Image, config_file_names
from syringe.curriculum.problems import Problem
from syringe.curriculum.tree import LessonSource
from syringe.curriculum.yamlsource import YamlDocument

MAX_INTERFACE_NAME = 15  # Linux IFNAMSIZ - 1


def image_problems(image: Image, doc: YamlDocument) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for index, name in enumerate(image.network_interfaces):
        path = ("networkInterfaces", index)
        if name == "eth0":
            problems.append(doc.problem(path, "eth0 is the management interface and cannot carry a connection"))
        if len(name) > MAX_INTERFACE_NAME or not name:
            problems.append(doc.problem(path, f"interface name '{name}' must be 1-15 characters (Linux limit)"))
        if name in seen:
            problems.append(doc.problem(path, f"interface '{name}' is listed twice"))
        seen.add(name)
    if image.kind == "vm" and image.vm is None:
        problems.append(doc.problem(("kind",), "an image of kind vm needs a 'vm' section (memory, cpus, disk)"))
    if image.kind == "container" and image.vm is not None:
        problems.append(doc.problem(("vm",), "the 'vm' section only applies to images of kind vm"))
    return problems


def _duplicates(names: Iterable[str]) -> set[str]:
    return {name for name, count in Counter(names).items() if count > 1}


def lesson_problems(source: LessonSource, images: Mapping[str, Image]) -> list[Problem]:
    lesson, doc = source.lesson, source.doc
    problems: list[Problem] = []
    if lesson.slug != source.directory.name:
        problems.append(
            doc.problem(("slug",), f"slug '{lesson.slug}' must match its directory name '{source.directory.name}'")
        )

    repeated = _duplicates(e.name for e in lesson.endpoints)
    reported: set[str] = set()
    for i, endpoint in enumerate(lesson.endpoints):
        if endpoint.name in repeated and endpoint.name in reported:
            problems.append(doc.problem(("endpoints", i, "name"), f"duplicate endpoint name '{endpoint.name}'"))
        reported.add(endpoint.name)
        if not endpoint.presentations and not endpoint.additional_ports:
            problems.append(
                doc.problem(
                    ("endpoints", i), f"endpoint '{endpoint.name}' has neither presentations nor additionalPorts"
                )
            )
        seen: set[str] = set()
        for j, presentation in enumerate(endpoint.presentations):
            if presentation.name in seen:
                problems.append(
                    doc.problem(
                        ("endpoints", i, "presentations", j, "name"),
                        f"duplicate presentation name '{presentation.name}' on endpoint '{endpoint.name}'",
                    )
                )
            seen.add(presentation.name)

    names = {e.name for e in lesson.endpoints}
    pairs: dict[frozenset[str], int] = {}
    links: Counter[str] = Counter()
    subnets: list[tuple[int, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
    for i, connection in enumerate(lesson.connections):
        for side in ("a", "b"):
            name = getattr(connection, side)
            if name not in names:
                problems.append(doc.problem(("connections", i, side), f"connection to unknown endpoint '{name}'"))
        if connection.a == connection.b:
            problems.append(doc.problem(("connections", i), f"endpoint '{connection.a}' is linked to itself"))
        else:
            pair = frozenset((connection.a, connection.b))
            if pair in pairs:
                problems.append(
                    doc.problem(
                        ("connections", i),
                        f"'{connection.a}' and '{connection.b}' are already linked by connections[{pairs[pair]}]",
                    )
                )
            else:
                pairs[pair] = i
        links[connection.a] += 1
        links[connection.b] += 1
        if connection.subnet is not None:
            try:
                network = ipaddress.ip_network(connection.subnet, strict=True)
            except ValueError as exc:
                problems.append(doc.problem(("connections", i, "subnet"), f"invalid subnet CIDR: {exc}"))
                continue
            if network.num_addresses < 2 or (network.version == 4 and network.prefixlen > 31):
                problems.append(
                    doc.problem(("connections", i, "subnet"), f"subnet {network} has no room for two hosts")
                )
            for j, other in subnets:
                if network.overlaps(other):
                    problems.append(
                        doc.problem(
                            ("connections", i, "subnet"),
                            f"subnet {network} overlaps {other} of connections[{j}]",
                        )
                    )
            subnets.append((i, network))

    for i, endpoint in enumerate(lesson.endpoints):
        image = images.get(endpoint.image)
        if image is None or not image.network_interfaces:
            continue
        if links[endpoint.name] > len(image.network_interfaces):
            problems.append(
                doc.problem(
                    ("endpoints", i, "image"),
                    f"endpoint '{endpoint.name}' has {links[endpoint.name]} connections but image "
                    f"'{image.slug}' lists only {len(image.network_interfaces)} networkInterfaces",
                )
            )
    return problems


def reference_problems(
    source: LessonSource, images: set[str], collections: set[str], lessons: set[str]
) -> list[Problem]:
    lesson, doc = source.lesson, source.doc
    problems = []
    for i, endpoint in enumerate(lesson.endpoints):
        if endpoint.image not in images:
            problems.append(doc.problem(("endpoints", i, "image"), f"unknown image '{endpoint.image}'"))
    if lesson.collection is not None and lesson.collection not in collections:
        problems.append(doc.problem(("collection",), f"unknown collection '{lesson.collection}'"))
    for i, prereq in enumerate(lesson.prereqs):
        if prereq == lesson.slug:
            problems.append(doc.problem(("prereqs", i), "a lesson cannot be its own prerequisite"))
        elif prereq not in lessons:
            problems.append(doc.problem(("prereqs", i), f"unknown prerequisite lesson '{prereq}'"))
    return problems


def verify_problems(source: LessonSource) -> list[Problem]:
    """Learner checks: a known endpoint, exactly one of command and script, a valid expect pattern, the
    script present, and names unique in their stage."""
    lesson, doc = source.lesson, source.doc
    names = {e.name for e in lesson.endpoints}
    problems = []
    for index, stage in enumerate(lesson.stages):
        seen: set[str] = set()
        for j, check in enumerate(stage.verify):
            path = ("stages", index, "verify", j)
            if check.name in seen:
                problems.append(doc.problem((*path, "name"), f"duplicate check name '{check.name}'"))
            seen.add(check.name)
            if check.endpoint not in names:
                problems.append(doc.problem((*path, "endpoint"), f"check on unknown endpoint '{check.endpoint}'"))
            if (check.command is None) == (check.script is None):
                problems.append(doc.problem(path, "a check needs exactly one of command and script"))
            if check.expect is not None:
                if check.command is None:
                    problems.append(doc.problem((*path, "expect"), "expect applies to a command"))
                try:
                    re.compile(check.expect)
                except re.error as exc:
                    problems.append(doc.problem((*path, "expect"), f"invalid regular expression: {exc}"))
            if check.script is not None and not (source.stage_dir(index) / "checks" / check.script).is_file():
                problems.append(
                    doc.problem(
                        (*path, "script"), f"missing check script {source.rel_dir}/stage{index}/checks/{check.script}"
                    )
                )
    return problems


def file_problems(source: LessonSource) -> list[Problem]:
    lesson, doc = source.lesson, source.doc
    problems = verify_problems(source)
    for index in range(len(lesson.stages)):
        guide = source.guide_path(index)
        if not guide.is_file():
            problems.append(
                doc.problem(("stages", index), f"missing stage guide {source.rel_dir}/stage{index}/{guide.name}")
            )
        configs = source.stage_dir(index) / "configs"
        for i, endpoint in enumerate(lesson.endpoints):
            if endpoint.configuration_type is None:
                continue
            candidates = config_file_names(endpoint.name, endpoint.configuration_type)
            if not any((configs / name).is_file() for name in candidates):
                expected = candidates[0] if len(candidates) == 1 else f"{endpoint.name}-<driver>.txt"
                problems.append(
                    doc.problem(
                        ("endpoints", i, "configurationType"),
                        f"stage {index}: missing configuration file {source.rel_dir}/stage{index}/configs/{expected} "
                        f"for configurationType {endpoint.configuration_type}",
                    )
                )
    return problems


def prerequisite_cycles(lessons: Mapping[str, LessonSource]) -> list[Problem]:
    """One problem per prerequisite cycle, reported on the cycle's alphabetically first lesson."""
    problems = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: set[tuple[str, ...]] = set()

    def visit(slug: str, path: list[str]) -> None:
        state[slug] = 1
        path.append(slug)
        for prereq in lessons[slug].lesson.prereqs:
            if prereq not in lessons:
                continue
            if state.get(prereq) == 1:
                cycle = path[path.index(prereq) :]
                start = cycle.index(min(cycle))
                cycles.add(tuple(cycle[start:] + cycle[:start]))
            elif prereq not in state:
                visit(prereq, path)
        path.pop()
        state[slug] = 2

    for slug in sorted(lessons):
        if slug not in state:
            visit(slug, [])
    for cycle in sorted(cycles):
        source = lessons[cycle[0]]
        index = source.lesson.prereqs.index(cycle[1] if len(cycle) > 1 else cycle[0])
        chain = " → ".join((*cycle, cycle[0]))
        problems.append(source.doc.problem(("prereqs", index), f"prerequisite cycle: {chain}"))
    return problems
