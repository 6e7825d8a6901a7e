"""The built-in web front end: ``/`` and its assets under ``/ui/``, built from ui/ into api/ui_static (committed,
so serving needs no Node.js). Every answer carries a strict Content-Security-Policy."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.problems import ProblemError

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent.parent / "ui_static"
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# esbuild names the chunks it splits off by their content's hash: those never change, so they may be cached.
HASHED = re.compile(r"-[A-Z0-9]{8}\.")
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
# Scripts only from this origin, never inline or eval'd; the guide's HTML cannot run script. Styles allow
# 'unsafe-inline' because xterm.js sizes and colours its terminal with <style> elements it creates at run time.
# connect-src 'self' covers the terminal's ws:/wss: on this host (CSP 3); frame-src 'self' the HTTP proxy's pages.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "frame-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _served(path: Path, cache: str) -> FileResponse:
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
        headers={**HEADERS, "Cache-Control": cache},
    )


@router.api_route("/", methods=["GET", "HEAD"])
def index() -> FileResponse:
    """The front end's one page; it routes by the URL's fragment."""
    page = STATIC / "index.html"
    if not page.is_file():
        raise ProblemError(404, "the web front end is not built: cd ui && npm ci && npm run build", "not-found")
    return _served(page, "no-cache")


@router.api_route("/ui/{name}", methods=["GET", "HEAD"])
def asset(name: str) -> FileResponse:
    path = STATIC / name
    if not ASSET_NAME.match(name) or path.suffix not in MEDIA_TYPES or not path.is_file():
        raise ProblemError(404, f"no asset '{name}'", "not-found")
    return _served(path, "public, max-age=31536000, immutable" if HASHED.search(name) else "no-cache")
