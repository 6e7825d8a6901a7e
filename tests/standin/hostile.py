"""Routes by which a test asks a stand-in pod's web server to misbehave, as an endpoint a learner controls may:
trickle its answers, send headers that act on the whole origin serving them, offer a service worker."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

# What a hostile endpoint may send to act on the origin that serves its pages.
ORIGIN_WIDE_HEADERS = {
    "Access-Control-Allow-Origin": "https://evil.example",
    "Access-Control-Allow-Credentials": "true",
    "Service-Worker-Allowed": "/",
    "Clear-Site-Data": '"*"',
    "Strict-Transport-Security": "max-age=0; includeSubDomains",
    "Alt-Svc": 'h2="evil.example:443"',
    "NEL": '{"report_to": "evil", "max_age": 86400}',
    "Report-To": '{"group": "evil", "max_age": 86400, "endpoints": [{"url": "https://evil.example/r"}]}',
}


async def trickle(request: web.Request) -> web.StreamResponse:
    """Hostile: the headers at once, then one byte every ``interval`` s (``count`` of them)."""
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    interval = float(request.query.get("interval", "5"))
    with contextlib.suppress(ConnectionError):
        for _ in range(int(request.query.get("count", "1000"))):
            await response.write(b".")
            await asyncio.sleep(interval)
        await response.write_eof()
    return response


async def origin_wide(_: web.Request) -> web.Response:
    """Hostile: headers that act on the whole origin serving them, and one that only concerns the page."""
    response = web.Response(text="<html><body>origin-wide</body></html>", content_type="text/html")
    for name, value in ORIGIN_WIDE_HEADERS.items():
        response.headers[name] = value
    response.headers["X-Endpoint"] = "kept"  # these two concern this response only
    response.headers["Content-Security-Policy"] = "default-src 'self'"
    response.headers.add("Set-Cookie", "tracker=1; Path=/; Domain=example.net")
    response.headers.add("Set-Cookie", "prefs=dark; Path=/")
    return response


async def service_worker(_: web.Request) -> web.Response:
    """Hostile: a service worker script that asks for the whole origin as its scope."""
    script = "self.addEventListener('fetch', e => e.respondWith(new Response('owned')));"
    return web.Response(text=script, content_type="application/javascript", headers={"Service-Worker-Allowed": "/"})


async def seen(request: web.Request) -> web.Response:
    """What the request carried: its cookies and Referer."""
    return web.json_response({"cookies": dict(request.cookies), "referer": request.headers.get("Referer")})


def add_hostile_routes(app: web.Application) -> None:
    app.router.add_get("/hostile/trickle", trickle)
    app.router.add_get("/hostile/origin-wide", origin_wide)
    app.router.add_get("/hostile/sw.js", service_worker)
    app.router.add_get("/api/seen", seen)
