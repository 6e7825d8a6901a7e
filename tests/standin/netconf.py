"""A small but real NETCONF server session (RFC 6241 over RFC 6242 SSH framing, 1.0 and 1.1)."""

from __future__ import annotations

import contextlib
import itertools
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncssh

from syringe.access.netconf_framing import Decoder, encode
from syringe.errors import FramingError

BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
CAP_10 = "urn:ietf:params:netconf:base:1.0"
CAP_11 = "urn:ietf:params:netconf:base:1.1"
CAPABILITIES = [
    CAP_10,
    CAP_11,
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:xml:ns:yang:ietf-interfaces?module=ietf-interfaces",
]
_session_ids = itertools.count(1)


@dataclass
class Datastores:
    """Configuration kept as XML fragments, per datastore, shared by every session of one device."""

    running: list[str] = field(default_factory=list)
    candidate: list[str] = field(default_factory=list)
    edits: int = 0


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _operation(message: str) -> str | None:
    """The local name of an <rpc>'s operation, or None."""
    try:
        rpc = ET.fromstring(message)
    except ET.ParseError:
        return None
    operation = next(iter(rpc), None)
    return _local(operation.tag) if _local(rpc.tag) == "rpc" and operation is not None else None


class NetconfSession:
    """Works on bytes, because NETCONF 1.1 chunk sizes count bytes."""

    def __init__(
        self,
        process: asyncssh.SSHServerProcess[bytes],
        store: Datastores,
        max_message: int = 1 << 20,
        capabilities: list[str] | None = None,
    ):
        self.process = process
        self.store = store
        self.capabilities = capabilities or CAPABILITIES
        self.chunked = False
        self.decoder = Decoder(max_message=max_message)

    async def read_message(self) -> str:
        self.decoder.chunked = self.chunked
        while (message := self.decoder.next_message()) is None:
            data = await self.process.stdin.read(65536)
            if not data:
                raise EOFError
            self.decoder.feed(data)
        return message.decode("utf-8", errors="replace")

    def write_message(self, text: str) -> None:
        self.process.stdout.write(encode(text.encode(), self.chunked))

    async def run(self) -> None:
        session_id = next(_session_ids)
        capabilities = "".join(f"<capability>{c}</capability>" for c in self.capabilities)
        self.write_message(
            f'<?xml version="1.0" encoding="UTF-8"?><hello xmlns="{BASE}"><capabilities>{capabilities}'
            f"</capabilities><session-id>{session_id}</session-id></hello>"
        )
        try:
            hello = ET.fromstring(await self.read_message())
            theirs = {c.text.strip() for c in hello.iter() if _local(c.tag) == "capability" and c.text}
            self.chunked = CAP_11 in theirs and CAP_11 in self.capabilities
            while True:
                message = await self.read_message()
                hostile = HOSTILE.get(_operation(message))
                if hostile is not None:
                    await hostile(self)
                    break
                if not self.handle(message):
                    break
        except (EOFError, asyncssh.BreakReceived, asyncssh.SignalReceived, ConnectionError):
            pass
        except (ET.ParseError, FramingError):
            pass
        self.process.exit(0)

    async def endless_reply(self) -> None:
        """Hostile: a reply that never ends, chunk after chunk in base:1.1 (a message with no end marker in
        base:1.0), for as long as the client reads."""
        chunk = b"<data>" + b"x" * 65530
        framed = b"\n#%d\n%s" % (len(chunk), chunk) if self.chunked else chunk
        with contextlib.suppress(asyncssh.Error, ConnectionError, OSError):
            while True:
                self.process.stdout.write(framed)
                await self.process.stdout.drain()

    async def no_reply(self) -> None:
        """Hostile: the RPC is taken and never answered; the session stays open until the client leaves."""
        with contextlib.suppress(asyncssh.Error, ConnectionError):
            while await self.process.stdin.read(65536):
                pass

    def _reply(self, message_id: str | None, body: str) -> None:
        attribute = f' message-id="{message_id}"' if message_id is not None else ""
        self.write_message(f'<rpc-reply xmlns="{BASE}"{attribute}>{body}</rpc-reply>')

    def _error(self, message_id: str | None, tag: str, text: str) -> None:
        self._reply(
            message_id,
            f"<rpc-error><error-type>rpc</error-type><error-tag>{tag}</error-tag>"
            f"<error-severity>error</error-severity><error-message>{text}</error-message></rpc-error>",
        )

    def handle(self, message: str) -> bool:
        try:
            rpc = ET.fromstring(message)
        except ET.ParseError as exc:
            self._error(None, "malformed-message", str(exc))
            return True
        message_id = rpc.get("message-id")
        operation = next(iter(rpc), None)
        if _local(rpc.tag) != "rpc" or operation is None:
            self._error(message_id, "malformed-message", "expected <rpc> with an operation")
            return True
        name = _local(operation.tag)
        if name in ("get-config", "get"):
            source = operation.find(f"{{{BASE}}}source")
            which = _local(next(iter(source)).tag) if source is not None and len(source) else "running"
            fragments = self.store.candidate if which == "candidate" else self.store.running
            self._reply(message_id, f"<data>{''.join(fragments)}</data>")
        elif name == "edit-config":
            target = operation.find(f"{{{BASE}}}target")
            which = _local(next(iter(target)).tag) if target is not None and len(target) else "running"
            config = operation.find(f"{{{BASE}}}config")
            fragments = [ET.tostring(child, encoding="unicode") for child in (config if config is not None else [])]
            if which == "candidate":
                self.store.candidate = fragments
            else:
                self.store.running = fragments
                self.store.candidate = list(fragments)
            self.store.edits += 1
            self._reply(message_id, "<ok/>")
        elif name == "commit":
            self.store.running = list(self.store.candidate)
            self._reply(message_id, "<ok/>")
        elif name in ("lock", "unlock", "discard-changes", "validate"):
            self._reply(message_id, "<ok/>")
        elif name == "close-session":
            self._reply(message_id, "<ok/>")
            return False
        else:
            self._error(message_id, "operation-not-supported", f"{name} is not supported")
        return True


# RPCs by which a test asks this device to misbehave.
HOSTILE: dict[str | None, Callable[[NetconfSession], Awaitable[None]]] = {
    "endless-reply": NetconfSession.endless_reply,
    "no-reply": NetconfSession.no_reply,
}
