"""Errors in the Antidote dialect as antidote-core's grpc-gateway wrote them: ``{"error": msg, "code": <gRPC
code>, "message": msg}``, with the HTTP status grpc-gateway gives that code. antidote-web shows ``error`` and
matches ``message`` (``Invalid session ID <id>`` makes it renew its session)."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from enum import IntEnum
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.problems import ProblemError
from syringe.errors import Busy, LessonNotFound, LimitReached, NotFound, RuntimeUnavailable, SyringeError, UnknownLesson


class Code(IntEnum):
    """The gRPC status codes the dialect answers with."""

    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    NOT_FOUND = 5
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    UNAVAILABLE = 14


# grpc-gateway's HTTPStatusFromCode (FailedPrecondition is 400 there, on purpose).
HTTP_STATUS = {
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.NOT_FOUND: 404,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.UNAVAILABLE: 503,
}
_CODE_OF_STATUS = {400: Code.INVALID_ARGUMENT, 404: Code.NOT_FOUND, 409: Code.FAILED_PRECONDITION,
                   413: Code.INVALID_ARGUMENT, 429: Code.RESOURCE_EXHAUSTED, 503: Code.UNAVAILABLE}  # fmt: skip


def json_response(body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, status_code=status, media_type="application/json", headers=headers)


class AntidoteError(Exception):
    """Raised by the dialect's routes; answered as grpc-gateway would."""

    def __init__(self, code: Code, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers

    def response(self) -> Response:
        body = {"error": self.message, "code": int(self.code), "message": self.message}
        return json_response(body, HTTP_STATUS[self.code], self.headers)


def from_syringe(exc: SyringeError) -> AntidoteError:
    """The one mapping of Syringe's exceptions to gRPC codes (the native API's is api/errors.py)."""
    if isinstance(exc, LessonNotFound | NotFound):
        return AntidoteError(Code.NOT_FOUND, str(exc))
    if isinstance(exc, Busy):
        return AntidoteError(Code.FAILED_PRECONDITION, str(exc))
    if isinstance(exc, LimitReached):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return AntidoteError(Code.RESOURCE_EXHAUSTED, str(exc), headers)
    if isinstance(exc, RuntimeUnavailable):
        return AntidoteError(Code.UNAVAILABLE, str(exc))
    if isinstance(exc, UnknownLesson):
        return AntidoteError(Code.INVALID_ARGUMENT, str(exc))
    return AntidoteError(Code.INVALID_ARGUMENT, str(exc))


def from_problem(exc: ProblemError) -> AntidoteError:
    """A refusal raised by the API's shared parts (rate limits, ...) in the dialect's words."""
    return AntidoteError(_CODE_OF_STATUS.get(exc.status, Code.UNKNOWN), exc.detail, exc.headers)


class GrpcRoute(APIRoute):
    """A route whose refusals, however raised, are answered as grpc-gateway errors, never as problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except AntidoteError as exc:
                return exc.response()
            except ProblemError as exc:
                return from_problem(exc).response()
            except SyringeError as exc:
                return from_syringe(exc).response()

        return answer
