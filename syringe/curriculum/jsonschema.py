"""JSON Schema for each metafile kind, for editors' YAML plugins."""

from __future__ import annotations

from typing import Any

from syringe.curriculum.models import METAFILE_MODELS

FILE_NAMES = {
    "curriculum": "curriculum.meta.yaml",
    "collection": "collection.meta.yaml",
    "image": "image.meta.yaml",
    "lesson": "lesson.meta.yaml",
}


def metafile_schema(kind: str) -> dict[str, Any]:
    model = METAFILE_MODELS[kind]
    schema = model.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://syringe.dev/schema/{FILE_NAMES[kind]}.json"
    schema.setdefault("title", model.__name__)
    schema["description"] = f"Syringe {FILE_NAMES[kind]}"
    return schema


def all_schemas() -> dict[str, dict[str, Any]]:
    return {kind: metafile_schema(kind) for kind in METAFILE_MODELS}
