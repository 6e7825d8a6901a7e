"""What every planned object shares: its type, and metadata of one shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

K8sObject = dict[str, Any]


def metadata(name: str, namespace: str, common: Mapping[str, str], **extra: str) -> dict[str, Any]:
    """An object's metadata: its name, its namespace, the live lesson's common labels and ``extra`` ones."""
    return {"name": name, "namespace": namespace, "labels": {**common, **extra}}
