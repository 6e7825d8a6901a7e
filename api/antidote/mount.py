"""How the app takes in the Antidote dialect, and lets go of it."""

from __future__ import annotations

from fastapi import FastAPI

from api.antidote.cors import DialectCors
from api.antidote.guesses import Guesses
from api.antidote.terminal import SocketTerminals
from api.antidote.views import LiveLessonViews
from api.routers.antidote import ACORE_PREFIX, router
from syringe.settings import Settings


def install(app: FastAPI, settings: Settings) -> None:
    """The dialect's routes under ``/exp`` and ``/acore/exp``, its terminal at ``/socket.io/``, and CORS for
    them. Call it after the app's other middleware but before any that rewrites paths by Host (the proxy
    origins), so that the dialect sees the paths Syringe serves."""
    app.state.antidote_views = LiveLessonViews(app.state.catalog, settings.plan.instance)
    app.state.antidote_guesses = Guesses(settings.api.rate_limited_addresses)
    app.state.antidote_terminals = SocketTerminals(app.state, settings.max_body_bytes)
    app.include_router(router)
    app.include_router(router, prefix=ACORE_PREFIX)
    app.mount("/socket.io", app.state.antidote_terminals.asgi)
    app.add_middleware(DialectCors, allowed_origins=settings.antidote.allowed_origins)


async def close(app: FastAPI) -> None:
    """End the dialect's open terminals (a no-op when it is off)."""
    terminals: SocketTerminals | None = getattr(app.state, "antidote_terminals", None)
    if terminals is not None:
        await terminals.close()
