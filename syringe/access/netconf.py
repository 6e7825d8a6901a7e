"""A NETCONF client over SSH (RFC 6241/6242): hello exchange, RPCs in 1.0 (EOM) or 1.1 (chunked) framing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

import asyncssh
import defusedxml
import defusedxml.ElementTree as SafeET

from syringe.access.netconf_framing import EOM, MAX_MESSAGE, Decoder, encode
from syringe.access.ssh import login, reason
from syringe.errors import FramingError, LoginFailed, MessageTooLarge, NetconfError

if TYPE_CHECKING:
    from syringe.access.probes import Target

__all__ = [
    "BASE_10",
    "BASE_11",
    "BASE_NS",
    "EOM",
    "MAX_MESSAGE",
    "NetconfError",
    "NetconfSession",
    "one_rpc",
    "parse_xml",
]

BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
BASE_10 = "urn:ietf:params:netconf:base:1.0"
BASE_11 = "urn:ietf:params:netconf:base:1.1"
_ids = itertools.count(1)


def parse_xml(text: str | bytes) -> ET.Element:
    """Parse untrusted XML: no entities, no DTDs. Raises ValueError with the parser's reason."""
    try:
        element: ET.Element = SafeET.fromstring(text)
        return element
    except (ET.ParseError, defusedxml.DefusedXmlException) as exc:
        raise ValueError(f"not well-formed XML: {exc}") from exc


XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass
class NetconfSession:
    """One NETCONF session on an SSH connection. Use ``async with NetconfSession.open(...)``."""

    connection: asyncssh.SSHClientConnection
    writer: asyncssh.SSHWriter[bytes]
    reader: asyncssh.SSHReader[bytes]
    server_capabilities: list[str] = field(default_factory=list)
    session_id: str | None = None
    chunked: bool = False
    broken: bool = False  # the framing failed: nothing more can be read from this session
    _decoder: Decoder = field(default_factory=lambda: Decoder(max_message=MAX_MESSAGE))

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        username: str,
        password: str,
        timeout: float = 10.0,
        max_message: int = MAX_MESSAGE,
    ) -> NetconfSession:
        """A session after the hello exchange. A message from the server over ``max_message`` bytes (chunked or
        not, ended or not) fails the conversation as soon as it is certain, so it never holds more."""
        try:
            connection = await login(host, port, username, password, timeout)
        except LoginFailed as exc:
            raise NetconfError(f"ssh connect: {exc}") from exc
        try:
            writer, reader, _ = await asyncio.wait_for(
                connection.open_session(subsystem="netconf", encoding=None), timeout
            )
            session = cls(connection, writer, reader, _decoder=Decoder(max_message=max_message))
            await asyncio.wait_for(session._hello(), timeout)
            return session
        except BaseException as exc:
            connection.close()
            if isinstance(exc, TimeoutError):
                raise NetconfError(f"netconf hello: timed out after {timeout:g}s") from exc
            if isinstance(exc, (OSError, asyncssh.Error)):
                raise NetconfError(f"netconf subsystem: {reason(exc)}") from exc
            raise

    async def _hello(self) -> None:
        hello = parse_xml(await self._read())
        if _local(hello.tag) != "hello":
            raise NetconfError(f"netconf hello: expected <hello>, got <{_local(hello.tag)}>")
        self.server_capabilities = [
            (c.text or "").strip() for c in hello.iter() if _local(c.tag) == "capability" and c.text
        ]
        session_id = next((e.text for e in hello.iter() if _local(e.tag) == "session-id"), None)
        self.session_id = session_id.strip() if session_id else None
        if BASE_10 not in self.server_capabilities and BASE_11 not in self.server_capabilities:
            raise NetconfError("netconf hello: the server offers neither base:1.0 nor base:1.1")
        ours = "".join(f"<capability>{c}</capability>" for c in (BASE_10, BASE_11))
        reply = (
            f'<?xml version="1.0" encoding="UTF-8"?><hello xmlns="{BASE_NS}"><capabilities>{ours}'
            f"</capabilities></hello>"
        )
        self.writer.write(encode(reply.encode(), chunked=False))
        self.chunked = BASE_11 in self.server_capabilities

    async def _read(self) -> bytes:
        """The next message, in the session's framing (base:1.0 messages come stripped of whitespace)."""
        self._decoder.chunked = self.chunked
        try:
            while (message := self._decoder.next_message()) is None:
                data = await self.reader.read(65536)
                if not data:
                    raise NetconfError("the server closed the session")
                self._decoder.feed(data)
        except MessageTooLarge as exc:
            self._decoder = Decoder(max_message=self._decoder.max_message)  # what it held goes now
            self.broken = True
            raise NetconfError(
                f"the server's message is larger than {self._decoder.max_message} bytes (Syringe's cap)"
            ) from exc
        except FramingError as exc:
            self.broken = True
            raise NetconfError(f"netconf framing: {exc}") from exc
        return message if self.chunked else message.strip()

    def _send(self, message: bytes) -> None:
        self.writer.write(encode(message, self.chunked))

    async def rpc(self, operation: str | bytes, timeout: float = 30.0) -> str:
        """Send one RPC and return the reply's XML. ``operation`` is a whole <rpc> or just what goes in one."""
        element = parse_xml(operation)
        if _local(element.tag) != "rpc":
            # Wrapped as text, not re-serialized: the device gets the operation exactly as it was written,
            # namespace prefixes and all.
            text = operation.decode("utf-8") if isinstance(operation, bytes) else operation
            body = XML_DECLARATION.sub("", text, count=1).strip()
            message = f'<rpc message-id="{next(_ids)}" xmlns="{BASE_NS}">{body}</rpc>'.encode()
        else:
            if element.get("message-id") is None:
                element.set("message-id", str(next(_ids)))
            message = ET.tostring(element, encoding="utf-8")
        self._send(message)
        try:
            reply = await asyncio.wait_for(self._read(), timeout)
        except TimeoutError as exc:
            raise NetconfError(f"netconf rpc: no reply within {timeout:g}s") from exc
        return reply.decode("utf-8", errors="replace")

    async def close(self) -> None:
        if not self.broken:  # a server whose framing failed gets no <close-session>: its reply could not be read
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.rpc(f'<close-session xmlns="{BASE_NS}"/>'), 2)
        self.connection.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.connection.wait_closed(), 2)

    async def __aenter__(self) -> NetconfSession:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def one_rpc(target: Target, operation: bytes, timeout: float, max_reply: int = MAX_MESSAGE) -> str:
    """Run one RPC in a session of its own and return the reply (at most ``max_reply`` bytes). Raises
    ValueError, before connecting, when ``operation`` is not well-formed XML, and NetconfError when the
    conversation fails."""
    parse_xml(operation)
    opening = NetconfSession.open(target.host, target.port, target.username, target.password, timeout, max_reply)
    async with await opening as nc:
        return await nc.rpc(operation, timeout)
