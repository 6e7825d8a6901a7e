"""Where proxied content is served. By default under a path prefix of Syringe's own origin; with a wildcard host
template (``https://{livelesson}-{endpoint}-{presentation}.labs.example.net``), on an origin of its own per
live lesson, endpoint and presentation, so that an endpoint's pages, scripts, cookies and service workers
never share an origin with Syringe or with another live lesson."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

PLACEHOLDERS = ("livelesson", "endpoint", "presentation")
# What live-lesson ids (hex) and endpoint and presentation names (DNS labels) are made of.
_VALUES = {
    "livelesson": re.compile(r"[0-9a-f]+"),
    "endpoint": re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"),
    "presentation": re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"),
}
_PIECES = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def api_prefix(livelesson_id: str, endpoint: str, presentation: str) -> str:
    """The proxy's path prefix on Syringe's own origin."""
    return f"/api/v1/livelessons/{livelesson_id}/endpoints/{endpoint}/http/{presentation}"


@dataclass(frozen=True)
class Addressed:
    """The presentation a proxy origin's host names."""

    livelesson: str
    endpoint: str
    presentation: str


class OriginTemplate:
    """A host template with ``{livelesson}``, ``{endpoint}`` and ``{presentation}``, each exactly once, all in
    the host (a wildcard DNS name and certificate cover it). Raises ValueError for anything else."""

    def __init__(self, template: str) -> None:
        parts = urlsplit(template)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"a proxy origin template is http(s)://host, not {template!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError(f"a proxy origin template is an origin only (no path, query or user): {template!r}")
        host, _, port = parts.netloc.rpartition(":") if re.search(r":\d+$", parts.netloc) else (parts.netloc, "", "")
        pieces = _PIECES.split(host.lower())
        names = pieces[1::2]
        if sorted(names) != sorted(PLACEHOLDERS):
            raise ValueError(
                f"a proxy origin template names each of {{livelesson}}, {{endpoint}} and {{presentation}} once "
                f"in its host: {template!r}"
            )
        literals = pieces[0::2]
        if any(not re.fullmatch(r"[a-z0-9.-]*", literal) for literal in literals) or "." not in literals[-1]:
            raise ValueError(f"a proxy origin template's host must be a DNS name under a domain: {template!r}")
        self.template = template
        self.scheme = parts.scheme
        self.port = port
        self._literals = literals
        self._names = names

    def url(self, livelesson_id: str, endpoint: str, presentation: str) -> str:
        """The origin of one presentation, with a trailing slash: where its proxied content starts."""
        values = {"livelesson": livelesson_id, "endpoint": endpoint, "presentation": presentation}
        host = self._literals[0] + "".join(
            values[name] + literal for name, literal in zip(self._names, self._literals[1:], strict=True)
        )
        return f"{self.scheme}://{host}{':' + self.port if self.port else ''}/"

    def match(self, host_header: str) -> list[Addressed]:
        """Every presentation the Host header could name (names may hold hyphens, so a host may split more
        than one way; the caller keeps the one that exists). Empty when it is not a proxy origin at all."""
        host = host_header.strip().lower()
        if re.search(r":\d+$", host) and not host.endswith("]"):
            host = host.rpartition(":")[0]
        # The Host header is the caller's: the split below tries every end of every name, so only a host
        # that can be one (a DNS name's length, the template's fixed start and end) gets that far.
        if len(host) > MAX_HOST or not host.startswith(self._literals[0]) or not host.endswith(self._literals[-1]):
            return []
        found: list[Addressed] = []
        for values in self._splits(host, 0, 0, {}):
            found.append(Addressed(values["livelesson"], values["endpoint"], values["presentation"]))
        return found

    def _splits(self, host: str, at: int, index: int, values: dict[str, str]) -> list[dict[str, str]]:
        literal = self._literals[index]
        if not host.startswith(literal, at):
            return []
        at += len(literal)
        if index == len(self._names):
            return [dict(values)] if at == len(host) else []
        found = []
        for end in range(at + 1, len(host) + 1):
            value = host[at:end]
            if not _VALUES[self._names[index]].fullmatch(value):
                continue
            found += self._splits(host, end, index + 1, {**values, self._names[index]: value})
        return found


MAX_HOST = 253  # a DNS name's longest


@functools.lru_cache(maxsize=4)
def _parsed(template: str) -> OriginTemplate:
    return OriginTemplate(template)


def proxy_url(template: str, livelesson_id: str, endpoint: str, presentation: str) -> str:
    """What the API answers as a presentation's ``proxyUrl``: its own origin with a template, else the prefix."""
    if template:
        return _parsed(template).url(livelesson_id, endpoint, presentation)
    return api_prefix(livelesson_id, endpoint, presentation) + "/"
