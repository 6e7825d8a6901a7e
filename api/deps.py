"""Request dependencies: the pieces of app state a router needs, and who is asking.

They are ``async def`` although they never wait: FastAPI runs plain ``def`` dependencies in a thread
pool, and that hop cost a third of a status poll's time.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from api.problems import ProblemError
from syringe.catalog import Catalog
from syringe.sessions import LiveLessonManager
from syringe.sessions.learners import Session, Sessions


async def catalog_dependency(request: Request) -> Catalog:
    return catalog(request)


def catalog(request: Request) -> Catalog:
    found: Catalog = request.app.state.catalog
    return found


def sessions(request: Request) -> Sessions:
    found: Sessions = request.app.state.sessions
    return found


async def sessions_dependency(request: Request) -> Sessions:
    return sessions(request)


async def manager(request: Request) -> LiveLessonManager:
    found: LiveLessonManager | None = request.app.state.manager
    if found is None:
        reason = request.app.state.runtime_problem or "no runtime is configured"
        raise ProblemError(503, f"live lessons are unavailable: {reason}", "runtime-unavailable")
    return found


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(
            401,
            "this call needs the session's token: Authorization: Bearer <token>",
            "unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


async def learner(request: Request) -> Session:
    token = _bearer(request)
    session = sessions(request).authenticate(token, datetime.now(UTC))
    if session is None:
        raise ProblemError(
            401,
            "the token is unknown or its session has expired; create a new session",
            "unauthorized",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return session


async def admin(request: Request) -> None:
    configured = request.app.state.settings.admin_token
    token = _bearer(request)
    if configured is None:
        raise ProblemError(403, "the admin API is disabled: set SYRINGE_ADMIN_TOKEN to enable it", "forbidden")
    if not hmac.compare_digest(token.encode(), configured.get_secret_value().encode()):
        raise ProblemError(403, "this call needs the admin token", "forbidden")


CatalogDep = Annotated[Catalog, Depends(catalog_dependency)]
SessionsDep = Annotated[Sessions, Depends(sessions_dependency)]
Learner = Annotated[Session, Depends(learner)]
Manager = Annotated[LiveLessonManager, Depends(manager)]
