"""The HTTP reverse proxy to an endpoint's web UI or REST API, served under a path prefix.

Every method; bodies streamed both ways; hop-by-hop headers dropped; the learner's Syringe token (header,
query parameter or cookie) never forwarded; ``Location`` and ``Set-Cookie`` rewritten under the prefix.
Framework-free: the API hands in a ``ProxyRequest`` and turns the ``ProxyResponse`` into its own."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from syringe.access.probes import Target
from syringe.errors import Unreachable

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
}


@dataclass(frozen=True)
class ProxyRequest:
    method: str
    path: str  # under the prefix, without the leading slash
    query: Sequence[tuple[str, str]]
    headers: Sequence[tuple[str, str]]  # as the client sent them, Host and Cookie included
    cookies: Mapping[str, str]  # the Cookie header, parsed
    body: AsyncIterable[bytes]  # read only for methods other than GET and HEAD
    scheme: str


@dataclass(frozen=True)
class ProxyResponse:
    status: int
    headers: list[tuple[str, str]]  # filtered and rewritten
    body: AsyncIterator[bytes]
    aclose: Callable[[], Awaitable[None]]  # call once the body has been sent (or abandoned)

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers as ASGI wants them: lower-case names, latin-1."""
        return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]


def rewrite_location(location: str, target: Target, prefix: str) -> str:
    upstream = re.match(rf"^https?://{re.escape(target.host)}(:{target.port})?(?P<rest>/.*)?$", location)
    if upstream:
        return prefix + (upstream.group("rest") or "/")
    if location.startswith("/") and not location.startswith("//"):
        return prefix + location
    return location


def rewrite_cookie(cookie: str, prefix: str) -> str:
    parts = [p.strip() for p in cookie.split(";")]
    kept = [parts[0]]
    path = "/"
    for attribute in parts[1:]:
        name = attribute.split("=", 1)[0].strip().lower()
        if name == "path":
            path = attribute.split("=", 1)[1].strip() if "=" in attribute else "/"
        elif name != "domain":
            kept.append(attribute)
    kept.append(f"Path={prefix}{path if path.startswith('/') else '/' + path}")
    return "; ".join(kept)


async def forward(
    client: httpx.AsyncClient,
    target: Target,
    prefix: str,
    request: ProxyRequest,
    token_param: str,
    token_cookie: str,
) -> ProxyResponse:
    """Send ``request`` to ``target`` and return its response, headers ready and body still streaming.
    ``token_param`` and ``token_cookie`` name where the learner's token may come, so it stays here.
    Raises ``Unreachable`` when the endpoint does not answer."""
    query = httpx.QueryParams([(k, v) for k, v in request.query if k != token_param])
    dropped = HOP_BY_HOP | {"authorization", "cookie"}
    headers = [(k, v) for k, v in request.headers if k.lower() not in dropped]
    cookies = [f"{k}={v}" for k, v in request.cookies.items() if k != token_cookie]
    if cookies:
        headers.append(("cookie", "; ".join(cookies)))
    headers += [
        ("x-forwarded-prefix", prefix),
        ("x-forwarded-host", next((v for k, v in request.headers if k.lower() == "host"), "")),
        ("x-forwarded-proto", request.scheme),
    ]
    upstream_request = client.build_request(
        request.method,
        f"http://{target.host}:{target.port}/{request.path}",
        params=query,
        headers=headers,
        content=request.body if request.method not in ("GET", "HEAD") else None,
    )
    try:
        upstream = await client.send(upstream_request, stream=True)
    except httpx.HTTPError as exc:
        raise Unreachable(str(exc) or type(exc).__name__) from exc
    response_headers: list[tuple[str, str]] = []
    for name, value in upstream.headers.multi_items():
        lowered = name.lower()
        if lowered in HOP_BY_HOP:
            continue
        if lowered == "location":
            value = rewrite_location(value, target, prefix)
        elif lowered == "set-cookie":
            value = rewrite_cookie(value, prefix)
        response_headers.append((name, value))
    return ProxyResponse(upstream.status_code, response_headers, upstream.aiter_raw(), upstream.aclose)
