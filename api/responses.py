"""Responses built from bytes that are already JSON (cached views), skipping re-serialisation."""

from __future__ import annotations

from fastapi import Response


def json_bytes(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)
