"""The HTTP reverse proxy to an endpoint's web UI or REST API.

Every method; bodies streamed both ways; hop-by-hop headers dropped; the learner's Syringe token (header,
query parameter, cookie or Referer) never forwarded; ``Location`` and ``Set-Cookie`` rewritten under the
prefix. An exchange has a deadline and its response a minimum rate (``transfer.py``).

Where the content is served decides what may pass (``Served``). On an origin of its own (a proxy origin
template) the endpoint's headers and cookies pass as they are: that origin is the endpoint's. On Syringe's own
origin (the default) nothing the endpoint sends may act on that origin: headers that do (CORS, service-worker
scope, Clear-Site-Data, HSTS, Alt-Svc, reporting) are dropped, and only cookies the endpoint set through the
proxy, recognised by the mark the proxy puts on their names, are sent back to it; the origin's own cookies
never are. Framework-free: the API hands in a ``ProxyRequest`` and turns the ``ProxyResponse`` into its own."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from syringe.access.probes import Target
from syringe.access.transfer import TooSlow, TransferLimits, paced
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
# Response headers that act on the whole origin, not on the one response: dropped when the origin is Syringe's.
ORIGIN_WIDE = {
    "alt-svc",  # where the browser sends every later request to this origin
    "clear-site-data",  # wipes the origin's cookies and storage
    "expect-ct",
    "nel",  # network error reports of every request to the origin (URLs and all) to the endpoint's collector
    "origin-agent-cluster",
    "public-key-pins",
    "public-key-pins-report-only",
    "report-to",
    "reporting-endpoints",
    "service-worker-allowed",  # widens a service worker's scope to the whole origin
    "set-cookie2",
    "strict-transport-security",  # the origin's (and with includeSubDomains its subdomains') HTTPS policy
    "accept-ch",  # client hints the browser sends to the whole origin from then on
    "critical-ch",
}
ORIGIN_WIDE_PREFIXES = ("access-control-",)  # CORS: who else may read the origin's responses
# Cookies the endpoint sets through the proxy on Syringe's origin carry this before their name; only cookies
# with it are sent back to the endpoint (without it).
ENDPOINT_COOKIE = "syringe-ep."


@dataclass(frozen=True)
class Served:
    """Where the proxied content is served, and so what may pass."""

    own_origin: bool  # True: an origin of its own (the proxy origin template); False: Syringe's own origin
    content_security_policy: str = ""  # added to responses on Syringe's own origin, when set

    @property
    def shared(self) -> bool:
        return not self.own_origin


@dataclass(frozen=True)
class ProxyRequest:
    method: str
    path: str  # under the prefix, without the leading slash
    query: Sequence[tuple[str, str]]
    headers: Sequence[tuple[str, str]]  # as the client sent them, Host and Cookie included
    cookies: Mapping[str, str]  # the Cookie header, parsed
    body: AsyncIterable[bytes]  # read only for methods other than GET and HEAD
    scheme: str  # as the client used it: "https" behind TLS (a trusted proxy's X-Forwarded-Proto included)


@dataclass(frozen=True)
class ProxyResponse:
    status: int
    headers: list[tuple[str, str]]  # filtered and rewritten
    body: AsyncGenerator[bytes, None]  # raises Unreachable (TooSlow) when the endpoint stops keeping up
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


def rewrite_cookie(cookie: str, prefix: str, mark: str = "") -> str | None:
    """A Set-Cookie value with its path under ``prefix``, no Domain (so it stays with this host), and ``mark``
    before its name. None for a cookie that cannot carry the mark (one without a name)."""
    parts = [p.strip() for p in cookie.split(";")]
    if mark:
        name, equals, value = parts[0].partition("=")
        if not equals or not name.strip():
            return None
        parts[0] = f"{mark}{name.strip()}={value}"
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


def endpoint_cookies(cookies: Mapping[str, str], served: Served, token_cookie: str) -> list[str]:
    """The request's cookies the endpoint may see: on Syringe's origin only those it set (their mark taken
    off); on an origin of its own all of them; never Syringe's token."""
    if served.own_origin:
        return [f"{k}={v}" for k, v in cookies.items() if k != token_cookie]
    marked = ((k.removeprefix(ENDPOINT_COOKIE), v) for k, v in cookies.items() if k.startswith(ENDPOINT_COOKIE))
    return [f"{k}={v}" for k, v in marked if k]


def without_token(url: str, token_param: str) -> str:
    """A URL (a Referer) with the token query parameter taken out."""
    parts = urlsplit(url)
    if not any(k == token_param for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
        return url
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != token_param]
    return urlunsplit(parts._replace(query=urlencode(query)))


def request_headers(
    request: ProxyRequest, prefix: str, served: Served, token_param: str, token_cookie: str
) -> list[tuple[str, str]]:
    # The client's own X-Forwarded-* are replaced by the proxy's, never passed on beside them.
    dropped = HOP_BY_HOP | {"authorization", "cookie", "x-forwarded-prefix", "x-forwarded-host", "x-forwarded-proto"}
    headers = [
        (k, without_token(v, token_param) if k.lower() == "referer" else v)
        for k, v in request.headers
        if k.lower() not in dropped
    ]
    cookies = endpoint_cookies(request.cookies, served, token_cookie)
    if cookies:
        headers.append(("cookie", "; ".join(cookies)))
    headers += [
        ("x-forwarded-prefix", prefix),
        ("x-forwarded-host", next((v for k, v in request.headers if k.lower() == "host"), "")),
        ("x-forwarded-proto", request.scheme),
    ]
    return headers


def response_headers(upstream: httpx.Headers, target: Target, prefix: str, served: Served) -> list[tuple[str, str]]:
    kept: list[tuple[str, str]] = []
    for name, value in upstream.multi_items():
        lowered = name.lower()
        if lowered in HOP_BY_HOP:
            continue
        if served.shared and (lowered in ORIGIN_WIDE or lowered.startswith(ORIGIN_WIDE_PREFIXES)):
            continue
        if lowered == "location":
            value = rewrite_location(value, target, prefix)
        elif lowered == "set-cookie":
            rewritten = rewrite_cookie(value, prefix, ENDPOINT_COOKIE if served.shared else "")
            if rewritten is None:
                continue
            value = rewritten
        kept.append((name, value))
    if served.shared and served.content_security_policy:
        # Added, never replacing the endpoint's own: a browser enforces every policy it is given.
        kept.append(("Content-Security-Policy", served.content_security_policy))
    return kept


async def forward(
    client: httpx.AsyncClient,
    target: Target,
    prefix: str,
    request: ProxyRequest,
    token_param: str,
    token_cookie: str,
    served: Served,
    limits: TransferLimits,
) -> ProxyResponse:
    """Send ``request`` to ``target`` and return its response, headers ready and body still streaming.
    ``token_param`` and ``token_cookie`` name where the learner's token may come, so it stays here.
    Raises ``Unreachable`` when the endpoint does not answer, or not within the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.deadline
    query = httpx.QueryParams([(k, v) for k, v in request.query if k != token_param])
    upstream_request = client.build_request(
        request.method,
        f"http://{target.host}:{target.port}/{request.path}",
        params=query,
        headers=request_headers(request, prefix, served, token_param, token_cookie),
        content=request.body if request.method not in ("GET", "HEAD") else None,
    )
    try:
        async with asyncio.timeout_at(deadline):
            upstream = await client.send(upstream_request, stream=True)
    except TimeoutError as exc:
        raise TooSlow(f"no answer within the deadline of {limits.deadline:g} s") from exc
    except httpx.HTTPError as exc:
        raise Unreachable(str(exc) or type(exc).__name__) from exc
    body = paced(upstream.aiter_raw(), limits, deadline, loop.time, (httpx.HTTPError,))

    async def close() -> None:
        try:
            await body.aclose()  # a read still pending is cancelled
        finally:
            await upstream.aclose()

    return ProxyResponse(upstream.status_code, response_headers(upstream.headers, target, prefix, served), body, close)
