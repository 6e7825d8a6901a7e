"""Proxy origins: with SYRINGE_ACCESS__PROXY_ORIGIN_TEMPLATE set, a request whose Host is one presentation's own
origin goes to that presentation's HTTP proxy, whatever its path. Such a host serves nothing else: none of
Syringe's API is reachable on it, so an endpoint's pages there can never act on Syringe's own origin."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from syringe.access.proxy_origin import Addressed, OriginTemplate, api_prefix

# The scope key the proxy reads: the presentations the Host could name (absent on Syringe's own origin).
PROXY_ORIGIN = "syringe.proxy_origin"


def origin_candidates(scope: Scope) -> list[Addressed] | None:
    found: list[Addressed] | None = scope.get(PROXY_ORIGIN)
    return found


class ProxyOrigins:
    """Outermost, so that the body cap and the metrics see the proxy's path."""

    def __init__(self, app: ASGIApp, template: str) -> None:
        self.app = app
        self.template = OriginTemplate(template)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = next((v.decode("latin-1") for k, v in scope.get("headers") or [] if k == b"host"), "")
            candidates = self.template.match(host) if host else []
            if candidates:
                first = candidates[0]
                prefix = api_prefix(first.livelesson, first.endpoint, first.presentation)
                path = scope["path"] if scope["path"].startswith("/") else "/" + scope["path"]
                raw_path = scope.get("raw_path") or path.encode()
                scope = {
                    **scope,
                    "path": prefix + path,
                    "raw_path": prefix.encode() + raw_path,
                    PROXY_ORIGIN: candidates,
                }
        await self.app(scope, receive, send)
