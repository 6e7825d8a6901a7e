"""A NETCONF datastore without YANG: edit-config's operations (RFC 6241 section 7.2) and subtree filtering
(section 6) on plain XML trees.

Without a schema, list entries are told apart by their key leaf: the first child named one of KEY_LEAVES
(``<interface><name>eth1</name>...``). Elements with no such child are containers, one per name.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
OPERATION = f"{{{NC}}}operation"
OPERATIONS = ("merge", "replace", "create", "delete", "remove")
KEY_LEAVES = ("name", "id", "key", "index", "prefix", "address")


class RpcError(Exception):
    """An <rpc-error>: its error-type, error-tag (RFC 6241 appendix A) and message."""

    def __init__(self, error_type: str, tag: str, message: str) -> None:
        super().__init__(message)
        self.error_type, self.tag = error_type, tag


def namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _key(element: ET.Element) -> tuple[str, str] | None:
    for name in KEY_LEAVES:
        leaf = element.find(f"{{{namespace(element.tag)}}}{name}" if namespace(element.tag) else name)
        if leaf is not None and len(leaf) == 0:
            return name, (leaf.text or "").strip()
    return None


def _match(parent: ET.Element, wanted: ET.Element) -> ET.Element | None:
    """The child of ``parent`` that ``wanted`` edits: the same element, and the same list entry by key."""
    key = _key(wanted)
    for child in parent:
        if child.tag == wanted.tag and (key is None or _key(child) == key):
            return child
    return None


def _without_operations(element: ET.Element) -> ET.Element:
    element = copy.deepcopy(element)
    for node in element.iter():
        node.attrib.pop(OPERATION, None)
    return element


def _operation(element: ET.Element, inherited: str) -> str:
    operation = element.attrib.get(OPERATION, inherited)
    if operation not in (*OPERATIONS, "none"):
        raise RpcError("protocol", "bad-attribute", f"unknown operation {operation!r} on <{local_name(element.tag)}>")
    return operation


def edit(datastore: ET.Element, config: ET.Element, default_operation: str = "merge") -> None:
    """Apply the children of ``config`` (an edit-config's <config>) to ``datastore`` (the root whose children
    are the configuration), in place. Raises RpcError (data-exists, data-missing, bad-attribute)."""
    if default_operation not in ("merge", "replace", "none"):
        raise RpcError("protocol", "invalid-value", f"default-operation {default_operation!r}")
    _edit_children(datastore, config, default_operation)


def _edit_children(target: ET.Element, edits: ET.Element, inherited: str) -> None:
    for wanted in edits:
        operation = _operation(wanted, inherited)
        existing = _match(target, wanted)
        name = local_name(wanted.tag)
        if operation == "create" and existing is not None:
            raise RpcError("application", "data-exists", f"<{name}> already exists; create refuses to overwrite it")
        if operation in ("delete", "remove"):
            if existing is None:
                if operation == "delete":
                    raise RpcError("application", "data-missing", f"<{name}> does not exist; delete needs it")
                continue
            target.remove(existing)
            continue
        if operation == "replace":
            replacement = _without_operations(wanted)
            if existing is None:
                target.append(replacement)
            else:
                target.insert(list(target).index(existing), replacement)
                target.remove(existing)
            continue
        if existing is None and operation == "none":
            # RFC 6241 7.2: with "none", data that has no corresponding level in the datastore is an error,
            # unless an operation below it creates that level.
            explicit = {node.attrib[OPERATION] for node in wanted.iter() if OPERATION in node.attrib}
            if explicit <= {"remove"} and explicit:
                continue
            if not explicit & {"merge", "replace", "create"}:
                raise RpcError("application", "data-missing", f"<{name}> does not exist (default-operation none)")
        if existing is None:
            existing = ET.SubElement(target, wanted.tag, {k: v for k, v in wanted.attrib.items() if k != OPERATION})
        if len(wanted) == 0:
            if operation != "none":
                existing.text = wanted.text
                for child in list(existing):
                    existing.remove(child)
            continue
        _edit_children(existing, wanted, "merge" if operation == "create" else operation)


def _same(filter_tag: str, tag: str) -> bool:
    """A filter element with no namespace of its own (or the NETCONF one, inherited from <rpc>) matches by
    local name."""
    if namespace(filter_tag) in ("", NC):
        return local_name(filter_tag) == local_name(tag)
    return filter_tag == tag


def _select(source: ET.Element, node: ET.Element) -> ET.Element | None:
    """``source`` as the subtree filter ``node`` selects it (both already match by name), or None."""
    if len(node) == 0:
        wanted = (node.text or "").strip()
        return copy.deepcopy(source) if not wanted or (source.text or "").strip() == wanted else None
    matches = [child for child in node if len(child) == 0 and (child.text or "").strip()]
    for match in matches:
        value = (match.text or "").strip()
        if not any(_same(match.tag, c.tag) and (c.text or "").strip() == value for c in source):
            return None
    others = [child for child in node if child not in matches]
    if not others:
        return copy.deepcopy(source)
    result = ET.Element(source.tag, source.attrib)
    for child in source:
        if any(_same(match.tag, child.tag) for match in matches):
            result.append(copy.deepcopy(child))
            continue
        for selection in others:
            if _same(selection.tag, child.tag) and (picked := _select(child, selection)) is not None:
                result.append(picked)
                break
    return result if len(result) or not others else None


def subtree_filter(data: ET.Element, filter_element: ET.Element | None) -> ET.Element:
    """The <data> that a subtree <filter> selects from ``data`` (no filter: all of it)."""
    result = ET.Element(f"{{{NC}}}data")
    if filter_element is None:
        result.extend(copy.deepcopy(child) for child in data)
        return result
    if filter_element.attrib.get("type", "subtree") != "subtree":
        raise RpcError("protocol", "bad-attribute", "only subtree filters are supported")
    for top in filter_element:
        for child in data:
            if _same(top.tag, child.tag) and (picked := _select(child, top)) is not None:
                result.append(picked)
    return result


def serialize(element: ET.Element) -> bytes:
    """XML as devices write it: each element in its namespace as the default one (``<system
    xmlns="urn:...ietf-system"><hostname>``), declared where it changes, rather than ElementTree's ns0:
    prefixes. A namespaced attribute keeps a prefix of its own."""
    out: list[str] = []

    def write(node: ET.Element, inherited: str) -> None:
        uri, name = namespace(node.tag), local_name(node.tag)
        attributes = []
        if uri != inherited:
            attributes.append(f"xmlns={quoteattr(uri)}")
        for index, (key, value) in enumerate(node.attrib.items()):
            if key.startswith("{"):
                attributes.append(
                    f"xmlns:a{index}={quoteattr(namespace(key))} a{index}:{local_name(key)}={quoteattr(value)}"
                )
            else:
                attributes.append(f"{key}={quoteattr(value)}")
        opening = " ".join([name, *attributes])
        if len(node) == 0 and not node.text:
            out.append(f"<{opening}/>")
        else:
            out.append(f"<{opening}>{escape(node.text or '')}")
            for child in node:
                write(child, uri)
            out.append(f"</{name}>")
        if node.tail and node.tail.strip():
            out.append(escape(node.tail))

    write(element, "")
    return "".join(out).encode()
