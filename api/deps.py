"""Request dependencies: the pieces of app state a router needs."""

from __future__ import annotations

from fastapi import Request

from syringe.catalog import Catalog


def catalog(request: Request) -> Catalog:
    found: Catalog = request.app.state.catalog
    return found
