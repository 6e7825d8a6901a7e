"""NETCONF message framing over SSH (RFC 6242), both ways, with no I/O: the end-of-message marker of base:1.0
and the chunked framing of base:1.1. Used by Syringe's NETCONF client and by the tests' NETCONF server."""

from __future__ import annotations

import re
from collections.abc import Iterator

from syringe.errors import FramingError, MessageTooLarge

EOM = b"]]>]]>"
MAX_MESSAGE = 16 * 1024 * 1024
MAX_CHUNK = 4294967295  # RFC 6242: chunk-size is 1..4294967295
# A chunk header ("\n#<size>\n", the size with no leading zero) or the end of chunks ("\n##\n") ...
_HEADER = re.compile(rb"\n#(#|[1-9][0-9]{0,9})\n")
# ... and what the start of one looks like before all of it has arrived.
_PARTIAL_HEADER = re.compile(rb"(\n(#(#|[1-9][0-9]{0,9})?)?)?")


def encode(message: bytes, chunked: bool, max_chunk: int = MAX_CHUNK) -> bytes:
    """``message`` framed for the wire: followed by ``]]>]]>`` (base:1.0), or in chunks of at most
    ``max_chunk`` bytes and an end-of-chunks marker (base:1.1). The base:1.0 framing cannot carry a message
    that contains ``]]>]]>`` (the protocol's own limit; the caller's XML is sent as it is)."""
    if not chunked:
        return message + EOM
    if not message:
        raise ValueError("a chunked message needs at least one byte (RFC 6242 has no empty chunk)")
    if not 0 < max_chunk <= MAX_CHUNK:
        raise ValueError(f"max_chunk must be within 1..{MAX_CHUNK}")
    chunks = (message[at : at + max_chunk] for at in range(0, len(message), max_chunk))
    return b"".join(b"\n#%d\n%s" % (len(chunk), chunk) for chunk in chunks) + b"\n##\n"


class Decoder:
    """Incremental: ``feed`` it the bytes as they arrive, take complete messages with ``next_message`` (or
    ``messages``). A message larger than ``max_message`` bytes raises ``MessageTooLarge`` as soon as that
    is certain: for base:1.1 the sum of all its chunks counts, so a message that never ends is caught too.

    ``chunked`` says which framing the next message uses; a session switches it after the hello exchange,
    which is always in base:1.0 framing. Switching in the middle of a message is refused."""

    def __init__(self, chunked: bool = False, max_message: int = MAX_MESSAGE) -> None:
        self._chunked = chunked
        self.max_message = max_message
        self._buffer = bytearray()
        self._searched = 0  # base:1.0: bytes of the buffer already searched for the marker
        self._parts: list[bytes] = []  # base:1.1: the chunks of the message so far ...
        self._size = 0  # ... their total size
        self._left = 0  # ... and what is still to come of the current chunk

    @property
    def chunked(self) -> bool:
        return self._chunked

    @chunked.setter
    def chunked(self, value: bool) -> None:
        if value != self._chunked and (self._parts or self._left):
            raise FramingError("the framing cannot change in the middle of a message")
        self._chunked = value
        self._searched = 0

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet returned as (part of) a message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_message(self) -> bytes | None:
        """The next complete message, or None until more bytes are fed. Raises FramingError."""
        return self._next_chunked() if self._chunked else self._next_eom()

    def messages(self) -> Iterator[bytes]:
        """Every complete message buffered so far (the framing may be switched between them)."""
        while (message := self.next_message()) is not None:
            yield message

    def _next_eom(self) -> bytes | None:
        end = self._buffer.find(EOM, max(0, self._searched - len(EOM) + 1))
        if end < 0:
            self._searched = len(self._buffer)
            if self._searched - (len(EOM) - 1) > self.max_message:
                raise MessageTooLarge(f"a message is larger than {self.max_message} bytes")
            return None
        if end > self.max_message:
            raise MessageTooLarge(f"a message is larger than {self.max_message} bytes")
        message = bytes(self._buffer[:end])
        del self._buffer[: end + len(EOM)]
        self._searched = 0
        return message

    def _next_chunked(self) -> bytes | None:
        while True:
            if self._left:
                take = min(self._left, len(self._buffer))
                if not take:
                    return None
                self._parts.append(bytes(self._buffer[:take]))
                del self._buffer[:take]
                self._left -= take
                continue
            header = _HEADER.match(self._buffer)
            if header is None:
                if _PARTIAL_HEADER.fullmatch(self._buffer) is None:
                    raise FramingError(f"bad chunk header {bytes(self._buffer[:16])!r}")
                return None
            field = bytes(header.group(1))  # before the buffer changes: a match reads the bytearray itself
            del self._buffer[: header.end()]
            if field == b"#":
                if not self._parts:
                    raise FramingError("end of chunks before any chunk")
                message = b"".join(self._parts)
                self._parts, self._size = [], 0
                return message
            size = int(field)
            if size > MAX_CHUNK:
                raise FramingError(f"chunk size {size} is over the protocol's limit {MAX_CHUNK}")
            self._size += size
            if self._size > self.max_message:
                raise MessageTooLarge(f"a message is larger than {self.max_message} bytes")
            self._left = size
