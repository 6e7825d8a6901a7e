"""Lesson files packed into ConfigMaps: keys ConfigMaps accept, chunks under the 1 MiB object limit."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CHUNK_BYTES = 900 * 1024  # a ConfigMap must stay under 1 MiB in total, metadata included
_KEY_UNSAFE = re.compile(r"[^-._a-zA-Z0-9]")


@dataclass
class FileChunk:
    name: str
    data: dict[str, str] = field(default_factory=dict)
    binary_data: dict[str, str] = field(default_factory=dict)
    items: list[dict[str, str]] = field(default_factory=list)  # key -> path inside the mount
    size: int = 0


def config_map_key(index: int, path: str) -> str:
    """A ConfigMap key for the ``index``-th file: unique by the index, readable by the path."""
    return f"f{index:04d}-{_KEY_UNSAFE.sub('_', path.replace('/', '.'))}"[:253]


def pack_files(files: Mapping[str, bytes], prefix: str) -> list[FileChunk]:
    """Split files, in path order, over as many ConfigMaps as their size needs."""
    chunks = [FileChunk(name=f"{prefix}-0")]
    for index, path in enumerate(sorted(files)):
        content = files[path]
        chunk = chunks[-1]
        if chunk.size and chunk.size + len(content) > CHUNK_BYTES:
            chunk = FileChunk(name=f"{prefix}-{len(chunks)}")
            chunks.append(chunk)
        key = config_map_key(index, path)
        try:
            chunk.data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            chunk.binary_data[key] = base64.b64encode(content).decode("ascii")
        chunk.items.append({"key": key, "path": path})
        chunk.size += len(content)
    return chunks


def unpack_files(objects: Sequence[Mapping[str, Any]], volume_sources: Sequence[Mapping[str, Any]]) -> dict[str, bytes]:
    """The files a pod sees in its lesson mount, read back from the plan's ConfigMaps: what the kubelet's
    projected volume would write, for runtimes that have no kubelet."""
    config_maps = {obj["metadata"]["name"]: obj for obj in objects if obj.get("kind") == "ConfigMap"}
    files: dict[str, bytes] = {}
    for source in volume_sources:
        reference = source.get("configMap") or {}
        config_map = config_maps.get(reference.get("name", ""), {})
        for item in reference.get("items") or []:
            key = item["key"]
            if key in (config_map.get("data") or {}):
                files[item["path"]] = config_map["data"][key].encode("utf-8")
            elif key in (config_map.get("binaryData") or {}):
                files[item["path"]] = base64.b64decode(config_map["binaryData"][key])
    return files
