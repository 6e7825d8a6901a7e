"""ASGI middleware: a cap on request bodies."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response


class BodyTooLarge(Exception):
    pass


# The HTTP proxy carries learners' uploads to their endpoints' web applications: a cap of its own.
PROXY_PATH = re.compile(r"^/api/v1/livelessons/[^/]+/endpoints/[^/]+/http/")


class BodyLimit:
    """Refuses bodies over the cap with 413, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int, proxy_max_bytes: int) -> None:
        self.app = app
        self.api_max_bytes = max_bytes
        self.proxy_max_bytes = proxy_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.proxy_max_bytes if PROXY_PATH.match(scope.get("path", "")) else self.api_max_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, receive, send, limit)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(413, f"the request body is larger than {limit} bytes")
        await response(scope, receive, send)
