"""NETCONF framing (RFC 6242): both framings both ways, split reads, and the caps and checks on what arrives."""

from __future__ import annotations

import pytest

from syringe.access.netconf_framing import EOM, Decoder, encode
from syringe.errors import FramingError, MessageTooLarge

MESSAGES = [b"<hello/>", "<rpc><get-config>é ✓</get-config></rpc>".encode(), b"x" * 70000, b"a\n#3\nb]]>c"]


def _decode_all(wire: bytes, chunked: bool, step: int, max_message: int = 1 << 20) -> list[bytes]:
    decoder = Decoder(chunked=chunked, max_message=max_message)
    found: list[bytes] = []
    for at in range(0, len(wire), step):
        decoder.feed(wire[at : at + step])
        found.extend(decoder.messages())
    assert decoder.buffered == 0
    return found


@pytest.mark.parametrize("step", [1, 2, 5, 7, 64, 1 << 20])
def test_chunked_round_trip_whatever_the_reads(step: int) -> None:
    wire = b"".join(encode(m, chunked=True) for m in MESSAGES)
    assert _decode_all(wire, chunked=True, step=step) == MESSAGES


@pytest.mark.parametrize("step", [1, 2, 5, 7, 64, 1 << 20])
def test_end_of_message_round_trip_whatever_the_reads(step: int) -> None:
    messages = [m for m in MESSAGES if EOM not in m] + [b"ends in a bracket]]", b""]
    wire = b"".join(encode(m, chunked=False) for m in messages)
    assert _decode_all(wire, chunked=False, step=step) == messages


def test_encodings_are_the_rfc_ones() -> None:
    assert encode(b"<ok/>", chunked=False) == b"<ok/>]]>]]>"
    assert encode(b"<ok/>", chunked=True) == b"\n#5\n<ok/>\n##\n"
    assert encode(b"abcdefg", chunked=True, max_chunk=3) == b"\n#3\nabc\n#3\ndef\n#1\ng\n##\n"
    with pytest.raises(ValueError):
        encode(b"", chunked=True)


def test_a_message_of_many_chunks_is_one_message() -> None:
    wire = encode(b"0123456789" * 100, chunked=True, max_chunk=7) + encode(b"next", chunked=True)
    assert _decode_all(wire, chunked=True, step=3) == [b"0123456789" * 100, b"next"]


def test_the_framing_switches_after_the_hello_between_messages_in_one_read() -> None:
    decoder = Decoder()
    decoder.feed(encode(b"<hello/>", chunked=False) + encode(b"<rpc/>", chunked=True)[:4])
    assert decoder.next_message() == b"<hello/>"
    decoder.chunked = True
    assert decoder.next_message() is None
    decoder.feed(encode(b"<rpc/>", chunked=True)[4:])
    assert decoder.next_message() == b"<rpc/>"


def test_the_framing_cannot_switch_in_the_middle_of_a_chunked_message() -> None:
    decoder = Decoder(chunked=True)
    decoder.feed(b"\n#3\nabc")
    assert decoder.next_message() is None
    with pytest.raises(FramingError, match="middle of a message"):
        decoder.chunked = False


def test_a_chunked_message_that_never_ends_hits_the_cap_though_every_chunk_is_small() -> None:
    decoder = Decoder(chunked=True, max_message=1000)
    with pytest.raises(MessageTooLarge, match="larger than 1000 bytes"):
        for _ in range(1000):
            decoder.feed(b"\n#100\n" + b"x" * 100)
            assert decoder.next_message() is None
    assert decoder.buffered < 1000  # the chunks were not all kept waiting in the buffer either


def test_a_chunk_announcing_more_than_the_cap_is_refused_before_it_arrives() -> None:
    decoder = Decoder(chunked=True, max_message=1000)
    decoder.feed(b"\n#1001\n")
    with pytest.raises(MessageTooLarge):
        decoder.next_message()


def test_the_cap_is_exact() -> None:
    assert _decode_all(encode(b"x" * 1000, chunked=True, max_chunk=300), True, 64, max_message=1000) == [b"x" * 1000]
    assert _decode_all(encode(b"x" * 1000, chunked=False), False, 64, max_message=1000) == [b"x" * 1000]
    with pytest.raises(MessageTooLarge):
        _decode_all(encode(b"x" * 1001, chunked=True, max_chunk=300), True, 64, max_message=1000)
    with pytest.raises(MessageTooLarge):
        _decode_all(encode(b"x" * 1001, chunked=False), False, 64, max_message=1000)


def test_an_end_of_message_marker_that_never_comes_hits_the_cap() -> None:
    decoder = Decoder(max_message=1000)
    with pytest.raises(MessageTooLarge):
        for _ in range(100):
            decoder.feed(b"y" * 100)
            assert decoder.next_message() is None


@pytest.mark.parametrize(
    "wire",
    [
        b"<rpc/>",  # no chunk header at all (a base:1.0 message where 1.1 was agreed)
        b"\n#abc\n",
        b"\n#0\n",  # RFC 6242: no empty chunks
        b"\n#012\nabcdefghijkl\n##\n",  # no leading zeros
        b"\n#-5\n",
        b"\n# 5\n",
        b"\n#5 \nabcde",
        b"#5\nabcde\n##\n",  # the newline before the hash is required
        b"\n#99999999999\n",  # eleven digits: over the protocol's 4294967295
        b"\n#4294967296\n",
        b"\n##\n",  # end of chunks with no chunk
        b"\n#3\nabc\n#\n",
        b"\n#3\nabcd\n##\n",  # more data than the chunk said
    ],
)
def test_malformed_chunk_headers_are_refused(wire: bytes) -> None:
    decoder = Decoder(chunked=True, max_message=1 << 40)
    with pytest.raises(FramingError) as raised:
        for byte in range(len(wire)):  # however the bytes arrive
            decoder.feed(wire[byte : byte + 1])
            assert decoder.next_message() is None
    assert not isinstance(raised.value, MessageTooLarge)


def test_a_partial_header_waits_for_more() -> None:
    decoder = Decoder(chunked=True)
    for part in (b"\n", b"#", b"42", b"94967295"):
        decoder.feed(part)
        assert decoder.next_message() is None
    decoder = Decoder(chunked=True)
    decoder.feed(b"\n#4\nabcd\n#")
    assert decoder.next_message() is None
    decoder.feed(b"#\n")
    assert decoder.next_message() == b"abcd"
