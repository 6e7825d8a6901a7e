"""The lesson-files volume every endpoint pod mounts: the lesson's files plus the plan's own (the wiring,
the checks), packed into ConfigMaps and projected into one volume."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from syringe.curriculum.models import Lesson
from syringe.plan.files import pack_files
from syringe.plan.objects import K8sObject, metadata

TOPOLOGY_FILE = ".syringe/topology.json"
CHECKS_FILE = ".syringe/checks.json"
FILES_PREFIX = "lesson-files"


def lesson_volume(
    lesson: Lesson,
    wiring: Mapping[str, Any],
    files: Mapping[str, bytes] | None,
    namespace: str,
    common: Mapping[str, str],
) -> tuple[list[K8sObject], list[dict[str, Any]]]:
    """(the ConfigMaps, the projected volume's sources) for ``files``, the topology ``wiring`` and, when any
    stage verifies, every stage's checks."""
    packed = dict(files or {})
    packed[TOPOLOGY_FILE] = json.dumps(wiring, indent=2, sort_keys=True).encode()
    if any(stage_spec.verify for stage_spec in lesson.stages):
        checks = {str(i): [c.model_dump(mode="json") for c in st.verify] for i, st in enumerate(lesson.stages)}
        packed[CHECKS_FILE] = json.dumps(checks, indent=2, sort_keys=True).encode()
    chunks = pack_files(packed, FILES_PREFIX)
    config_maps = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(chunk.name, namespace, common),
            **({"data": chunk.data} if chunk.data else {}),
            **({"binaryData": chunk.binary_data} if chunk.binary_data else {}),
        }
        for chunk in chunks
    ]
    volume_sources = [{"configMap": {"name": chunk.name, "items": chunk.items}} for chunk in chunks]
    return config_maps, volume_sources
