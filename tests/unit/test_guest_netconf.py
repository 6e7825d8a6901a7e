"""The guest NETCONF server's datastore semantics (RFC 6241 section 7.2 and subtree filters), and the
server itself as a process on a pipe, spoken to with Syringe's own framing."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from syringe.access.netconf_framing import Decoder, encode
from syringe.guest.netconf_datastore import NC, RpcError, edit, subtree_filter

IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
SYS = "urn:ietf:params:xml:ns:yang:ietf-system"


def config(body: str) -> ET.Element:
    return ET.fromstring(f'<config xmlns="{NC}" xmlns:nc="{NC}">{body}</config>')


def interfaces(*entries: str) -> str:
    return f'<interfaces xmlns="{IF}">' + "".join(f"<interface>{e}</interface>" for e in entries) + "</interfaces>"


def text(data: ET.Element) -> str:
    return ET.tostring(data).decode()


@pytest.fixture
def store() -> ET.Element:
    data = ET.Element(f"{{{NC}}}data")
    system = f'<system xmlns="{SYS}"><hostname>vr1</hostname></system>'
    edit(data, config(system + interfaces("<name>eth1</name><description>one</description>", "<name>eth2</name>")))
    return data


def test_merge_changes_a_list_entry_by_its_key_and_keeps_everything_else(store: ET.Element) -> None:
    edit(store, config(interfaces("<name>eth1</name><mtu>1400</mtu>", "<name>eth3</name>")))
    edit(store, config(interfaces("<name>eth1</name><description>two</description>")))
    names = [n.text for n in store.iter(f"{{{IF}}}name")]
    assert names == ["eth1", "eth2", "eth3"]  # changed in place, one new entry, none doubled
    eth1 = store.find(f".//{{{IF}}}interface")
    assert eth1 is not None and eth1.findtext(f"{{{IF}}}description") == "two"
    assert eth1.findtext(f"{{{IF}}}mtu") == "1400"
    assert store.findtext(f".//{{{SYS}}}hostname") == "vr1"


def test_replace_create_delete_and_remove(store: ET.Element) -> None:
    edit(store, config(interfaces('<name nc:operation="replace">eth1</name>').replace(
        "<interface><name", '<interface nc:operation="replace"><name')))  # fmt: skip
    eth1 = store.find(f".//{{{IF}}}interface")
    assert eth1 is not None and eth1.find(f"{{{IF}}}description") is None  # replaced whole
    assert "operation" not in text(store)  # the operation attributes are not stored
    with pytest.raises(RpcError) as exists:
        edit(store, config(interfaces("<name>eth2</name>").replace("<interface>", '<interface nc:operation="create">')))
    assert exists.value.tag == "data-exists"
    gone = interfaces("<name>eth2</name>").replace("<interface>", '<interface nc:operation="delete">')
    edit(store, config(gone))
    assert [n.text for n in store.iter(f"{{{IF}}}name")] == ["eth1"]
    with pytest.raises(RpcError) as missing:
        edit(store, config(gone))
    assert missing.value.tag == "data-missing"
    edit(store, config(gone.replace('"delete"', '"remove"')))  # remove: no error when it is not there
    with pytest.raises(RpcError) as bad:
        edit(store, config(gone.replace('"delete"', '"erase"')))
    assert bad.value.tag == "bad-attribute"


def test_default_operation_replace_and_none(store: ET.Element) -> None:
    with pytest.raises(RpcError) as missing:  # none: only explicit operations act, and nothing is created
        edit(store, config(f'<system xmlns="{SYS}"><location>rack 4</location></system>'), "none")
    assert missing.value.tag == "data-missing" and store.findtext(f".//{{{SYS}}}location") is None
    explicit = f'<system xmlns="{SYS}"><location nc:operation="merge">rack 3</location></system>'
    edit(store, config(explicit), "none")
    assert store.findtext(f".//{{{SYS}}}location") == "rack 3" and store.findtext(f".//{{{SYS}}}hostname") == "vr1"
    edit(store, config(f'<system xmlns="{SYS}"><location>rack 4</location></system>'), "replace")
    assert store.findtext(f".//{{{SYS}}}hostname") is None and store.findtext(f".//{{{SYS}}}location") == "rack 4"


def test_subtree_filters_select_by_name_and_by_content(store: ET.Element) -> None:
    by_content = ET.fromstring(f'<filter xmlns="{NC}" type="subtree">{interfaces("<name>eth2</name>")}</filter>')
    picked = text(subtree_filter(store, by_content))
    assert "eth2" in picked and "eth1" not in picked and "hostname" not in picked
    selection = ET.fromstring(f'<filter xmlns="{NC}"><system xmlns="{SYS}"/></filter>')
    assert "<ns1:hostname>vr1" in text(subtree_filter(store, selection)) or "vr1" in text(
        subtree_filter(store, selection)
    )
    assert "interfaces" not in text(subtree_filter(store, selection))
    nothing = ET.fromstring(f'<filter xmlns="{NC}">{interfaces("<name>eth9</name>")}</filter>')
    assert len(subtree_filter(store, nothing)) == 0


class Session:
    """The server as sshd runs it: a process whose stdin and stdout are the NETCONF channel."""

    def __init__(self, store: Path, sys_dir: Path, chunked: bool) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "syringe.guest.netconf_server", "--store", str(store), "--sys", str(sys_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.decoder = Decoder()
        hello = self._read()
        assert b"urn:ietf:params:netconf:base:1.1" in hello
        base = "base:1.1" if chunked else "base:1.0"
        self._send(f'<hello xmlns="{NC}"><capabilities><capability>urn:ietf:params:netconf:{base}</capability>'
                   "</capabilities></hello>", chunked=False)  # fmt: skip
        self.decoder.chunked = self.chunked = chunked
        self.id = 0

    def _send(self, message: str, chunked: bool) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(encode(message.encode(), chunked))
        self.process.stdin.flush()

    def _read(self) -> bytes:
        assert self.process.stdout is not None
        while (message := self.decoder.next_message()) is None:
            data = self.process.stdout.read1(65536)
            assert data, "the server closed the session"
            self.decoder.feed(data)
        return message

    def rpc(self, operation: str) -> str:
        self.id += 1
        self._send(f'<rpc xmlns="{NC}" message-id="{self.id}">{operation}</rpc>', self.chunked)
        reply = self._read().decode()
        assert f'message-id="{self.id}"' in reply
        return reply

    def close(self) -> int:
        assert "<ok" in self.rpc("<close-session/>")
        return self.process.wait(10)


@pytest.mark.parametrize("chunked", [False, True])
def test_the_server_keeps_candidate_and_running_and_reads_the_kernels_state(tmp_path: Path, chunked: bool) -> None:
    store, sys_dir = tmp_path / "store", tmp_path / "sys"
    store.mkdir()
    (sys_dir / "class/net/eth1/statistics").mkdir(parents=True)
    (sys_dir / "class/net/eth1/operstate").write_text("up\n")
    (sys_dir / "class/net/eth1/statistics/rx_bytes").write_text("1234\n")
    one = Session(store, sys_dir, chunked)
    edit_candidate = (f'<edit-config><target><candidate/></target><config>'
                      f'<system xmlns="{SYS}"><hostname>vr1</hostname></system></config></edit-config>')  # fmt: skip
    assert "<ok" in one.rpc(edit_candidate)
    assert "vr1" not in one.rpc("<get-config><source><running/></source></get-config>")
    # Another session (a learner beside the configurator) sees the same datastores.
    two = Session(store, sys_dir, not chunked)
    assert "vr1" in two.rpc("<get-config><source><candidate/></source></get-config>")
    assert "<ok" in two.rpc("<commit/>")
    assert "vr1" in one.rpc("<get-config><source><running/></source></get-config>")
    # A change made to running directly is what the next candidate starts from.
    learner = edit_candidate.replace("<candidate/>", "<running/>").replace(
        "<hostname>vr1</hostname>", "<contact>me</contact>"
    )
    assert "<ok" in two.rpc(learner)
    assert "<ok" in one.rpc(edit_candidate.replace("vr1", "vr9")) and "<ok" in one.rpc("<commit/>")
    raw = one.rpc("<get-config><source><running/></source></get-config>")
    # As devices write it: each subtree in its namespace as the default one, no ns0: prefixes.
    assert f'<system xmlns="{SYS}"><hostname>vr9</hostname>' in raw and "ns0:" not in raw and "ns1:" not in raw
    running = ET.fromstring(raw)
    assert running.findtext(f".//{{{SYS}}}hostname") == "vr9" and running.findtext(f".//{{{SYS}}}contact") == "me"
    state = ET.fromstring(one.rpc("<get/>"))
    assert state.findtext(f".//{{{IF}}}interface/{{{IF}}}statistics/{{{IF}}}in-octets") == "1234"
    assert state.findtext(f".//{{{IF}}}interface/{{{IF}}}oper-status") == "up"
    assert state.findtext(f".//{{{SYS}}}hostname") == "vr9"  # <get> is configuration and state
    refused = one.rpc("<kill-session><session-id>1</session-id></kill-session>")
    assert "operation-not-supported" in refused and "<rpc-error>" in refused
    hostile = one.rpc("<get-config><source><startup/></source></get-config>")
    assert "invalid-value" in hostile
    assert one.close() == 0 and two.close() == 0


def test_hostile_messages_get_errors_not_a_crash(tmp_path: Path) -> None:
    session = Session(tmp_path, tmp_path, chunked=False)
    assert session.process.stdin is not None
    session.process.stdin.write(encode(b'<!DOCTYPE x [<!ENTITY a "aaaa">]><rpc message-id="9"/>', False))
    session.process.stdin.flush()
    assert b"malformed-message" in session._read()
    session.process.stdin.write(encode(b"<rpc message-id='1'><get", False))
    session.process.stdin.flush()
    assert b"malformed-message" in session._read()
    deep = "<a>" * 5000 + "</a>" * 5000  # would exhaust the datastore's recursion
    too_deep = session.rpc(f"<edit-config><target><running/></target><config>{deep}</config></edit-config>")
    assert "malformed-message" in too_deep and "nested deeper than 128" in too_deep
    assert session.close() == 0
