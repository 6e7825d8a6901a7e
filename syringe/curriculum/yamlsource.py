"""Strict YAML reading that remembers where every value came from.

PyYAML silently keeps the last of two duplicate keys and reports tabs with an obscure message; here both
are problems. Every mapping key and sequence item gets a (line, column) so that later checks can point an
author at the exact place of a problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from syringe.curriculum.problems import Problem, format_path

# libyaml's composer is several times faster; fall back to pure Python where PyYAML was built without it.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path = tuple[str | int, ...]

# A metafile has hundreds of values; anything near this many is an alias bomb, not a lesson.
MAX_VALUES = 100_000


class _TooLarge(Exception):
    pass


@dataclass
class YamlDocument:
    """A parsed YAML file: its plain value and the position of each field path (1-based)."""

    file: str
    data: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def position(self, path: Path) -> tuple[int, int]:
        """The position of ``path``, or of its nearest ancestor that has one."""
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))

    def problem(self, path: Path, message: str) -> Problem:
        line, column = self.position(path)
        return Problem(self.file, line, column, format_path(path), message)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.count = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooLarge
        self.doc.positions.setdefault(path, _mark(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                items.append(self.build(item, (*path, index)))
            return items
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.doc.problems.append(self.doc.problem(path, "YAML merge keys (<<) are not supported in metafiles"))
                continue
            key = self._scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str | int | float | bool) or key is None:
                line, column = _mark(key_node)
                self.doc.problems.append(
                    Problem(self.doc.file, line, column, format_path(path), "mapping keys must be plain strings")
                )
                continue
            key = str(key)
            child = (*path, key)
            if key in result:
                line, column = _mark(key_node)
                first_line = self.doc.positions[child][0]
                self.doc.problems.append(
                    Problem(
                        self.doc.file,
                        line,
                        column,
                        format_path(child),
                        f"duplicate key '{key}' (first defined on line {first_line})",
                    )
                )
                continue
            self.doc.positions[child] = _mark(key_node)
            result[key] = self.build(value_node, child)
        return result

    def _scalar(self, node: yaml.Node, path: Path) -> Any:
        loader = _Loader("")
        try:
            return loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            line, column = _mark(node)
            self.doc.problems.append(Problem(self.doc.file, line, column, format_path(path), f"invalid value: {exc}"))
            return None
        finally:
            loader.dispose()


def _tab_problems(file: str, text: str) -> list[Problem]:
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        indent = len(line) - len(line.lstrip(" \t"))
        if "\t" in line[:indent]:
            problems.append(Problem(file, number, line.index("\t") + 1, "", "tab character in indentation; use spaces"))
    return problems


def parse_yaml(file: str, text: str) -> YamlDocument:
    """Parse one YAML document. Never raises: syntax errors become problems and ``data`` is None."""
    doc = YamlDocument(file=file, data=None)
    tabs = _tab_problems(file, text)
    if tabs:
        doc.problems.extend(tabs)
        return doc
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or exc.context or "invalid YAML"
        doc.problems.append(Problem(file, line, column, "", f"YAML syntax error: {reason}"))
        return doc
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(file, 1, 1, "", f"YAML error: {exc}"))
        return doc
    except (ValueError, RecursionError) as exc:  # e.g. NUL bytes, absurd nesting
        doc.problems.append(Problem(file, 1, 1, "", f"unreadable YAML: {exc}"))
        return doc
    nodes = [node for node in nodes if node is not None]
    if len(nodes) > 1:
        line, column = _mark(nodes[1])
        doc.problems.append(Problem(file, line, column, "", "a metafile holds one YAML document, found more"))
    if not nodes:
        doc.problems.append(Problem(file, 1, 1, "", "the file is empty"))
        return doc
    try:
        doc.data = _Builder(doc).build(nodes[0], ())
    except RecursionError:
        doc.problems.append(Problem(file, 1, 1, "", "unreadable YAML: nested too deeply"))
        doc.data = None
    except _TooLarge:
        doc.problems.append(
            Problem(file, 1, 1, "", f"document too large: more than {MAX_VALUES} values once aliases are expanded")
        )
        doc.data = None
    return doc
