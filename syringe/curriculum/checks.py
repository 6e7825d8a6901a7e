"""Checks beyond the schema: within a lesson, across the curriculum, and against the lesson's files."""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from syringe.curriculum.confined import inspect_confined, is_inside, relative_parts
from syringe.curriculum.inventory import LessonInventory
from syringe.curriculum.models import Image, config_file_names
from syringe.curriculum.policy import CurriculumPolicy
from syringe.curriculum.problems import Problem
from syringe.curriculum.tree import LessonSource
from syringe.curriculum.yamlsource import YamlDocument

MAX_INTERFACE_NAME = 15  # Linux IFNAMSIZ - 1
LOCAL_FILES = ("disk", "kernel", "initrd")


def _inside_one_of(path: str, directories: Sequence[Path]) -> Path | None:
    """The directory of ``directories`` that ``path`` really is inside (links resolved), or None."""
    real = os.path.realpath(path)
    return next((d for d in directories if is_inside(real, os.path.realpath(d))), None)


def _absolute_local_problem(value: str, image_dirs: Sequence[Path]) -> str | None:
    allowed = ", ".join(str(d) for d in image_dirs) or "none is listed"
    if "\0" in value or _inside_one_of(value, image_dirs) is None:
        return (
            f"{value} is outside the image's directory; an absolute path must be inside a directory the "
            f"operator lists in SYRINGE_LOCAL__IMAGE_DIRS ({allowed})"
        )
    try:
        mode = os.stat(value).st_mode
    except OSError:
        return None  # not there yet: the launch says so
    return None if stat.S_ISREG(mode) else f"{value} is not a regular file"


def local_file_problems(
    image: Image, doc: YamlDocument, root: Path, image_dir: str, policy: CurriculumPolicy
) -> list[Problem]:
    """The files a ``local:`` section names stay inside the image's directory (no link, no ``..``), or inside
    a directory the operator lists (SYRINGE_LOCAL__IMAGE_DIRS); where they exist, they are regular files.
    Whether they exist is the launch's question: a disk may be put in place after validation."""
    if image.local is None:
        return []
    problems = []
    for name in LOCAL_FILES:
        value: str = getattr(image.local, name)
        path = ("local", name)
        if not value:
            continue
        if PurePosixPath(value).is_absolute():
            if (why := _absolute_local_problem(value, policy.image_dirs)) is not None:
                problems.append(doc.problem(path, why))
        elif relative_parts(value) is None:
            problems.append(doc.problem(path, f"{value} leaves the image's directory; name a file inside {image_dir}/"))
        elif (reason := inspect_confined(root, f"{image_dir}/{value}")) is not None:
            problems.append(doc.problem(path, f"{image_dir}/{reason}"))
    return problems


def privilege_problems(image: Image, doc: YamlDocument, policy: CurriculumPolicy) -> list[Problem]:
    """A trusted VM image asks to run privileged; only the operator can grant that. Without a list from the
    operator there is nothing to check against (and the plan grants nothing)."""
    allowed = policy.privileged_images
    if allowed is None or image.kind != "vm" or image.flavor != "trusted" or image.slug in allowed:
        return []
    return [
        doc.problem(
            ("flavor",),
            f"image '{image.slug}' is a trusted vm, which asks to run privileged, but the operator's "
            "SYRINGE_PLAN__PRIVILEGED_IMAGES does not list it; use flavor untrusted or legacy, or ask the operator",
        )
    ]


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


def verify_problems(source: LessonSource, inventory: LessonInventory) -> list[Problem]:
    """Learner checks: a known endpoint, exactly one of command and script, a valid expect pattern, the
    script inside its stage's checks/ and present, and names unique in their stage."""
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
            if check.script is None:
                continue
            if relative_parts(check.script) is None:
                problems.append(
                    doc.problem(
                        (*path, "script"),
                        f"'{check.script}' leaves stage{index}/checks/; name a file inside it (no absolute path, "
                        "no '..')",
                    )
                )
            elif inventory.complete and f"stage{index}/checks/{check.script}" not in inventory.present:
                problems.append(
                    doc.problem(
                        (*path, "script"), f"missing check script {source.rel_dir}/stage{index}/checks/{check.script}"
                    )
                )
    return problems


def file_problems(source: LessonSource, inventory: LessonInventory) -> list[Problem]:
    """Every file the lesson names is there. Only names: what each file is (a link, a FIFO, too large) is
    the inventory's own problem, reported once."""
    lesson, doc = source.lesson, source.doc
    problems = verify_problems(source, inventory)
    if not inventory.complete:  # a cap stopped the walk: an absent name proves nothing
        return problems
    for index in range(len(lesson.stages)):
        guide = source.guide_name(index)
        if guide not in inventory.present:
            problems.append(doc.problem(("stages", index), f"missing stage guide {source.rel_dir}/{guide}"))
        for i, endpoint in enumerate(lesson.endpoints):
            if endpoint.configuration_type is None:
                continue
            candidates = config_file_names(endpoint.name, endpoint.configuration_type)
            if not any(f"stage{index}/configs/{name}" in inventory.present for name in candidates):
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
