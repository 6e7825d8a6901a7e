"""Lesson files packed into ConfigMaps: keys ConfigMaps accept, chunks under the 1 MiB object limit."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

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
