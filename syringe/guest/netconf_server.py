"""A NETCONF server (RFC 6241) for one session on stdin/stdout: sshd runs it as the "netconf" subsystem.

- Framing: base:1.0 and base:1.1 (RFC 6242), from Syringe's own framing module.
- Datastores: running and candidate, kept as XML files under STORE that every session of the device
  shares (a learner's and a configurator's), each change made under a lock. edit-config merges, replaces,
  creates, deletes and removes (netconf_datastore.py); commit and discard-changes move between the two.
- <get> answers the running configuration and the device's operational state, read from the kernel:
  interfaces (ietf-interfaces' interfaces-state) and the platform and clock (ietf-system's system-state).
- Filters: subtree.

    python3 -m syringe.guest.netconf_server [--store DIR] [--sys DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import fcntl
import os
import platform
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from syringe.access.netconf_framing import Decoder, encode
from syringe.errors import FramingError, MessageTooLarge
from syringe.guest.netconf_datastore import NC, RpcError, edit, local_name, serialize, subtree_filter

BASE_10 = "urn:ietf:params:netconf:base:1.0"
BASE_11 = "urn:ietf:params:netconf:base:1.1"
CAPABILITIES = (
    BASE_10,
    BASE_11,
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:netconf:capability:writable-running:1.0",
)
IF_NS = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
SYS_NS = "urn:ietf:params:xml:ns:yang:ietf-system"
MAX_MESSAGE = 4 * 1024 * 1024  # a small VM's memory is small
MAX_DEPTH = 128  # of an <rpc>'s elements: configuration is a few levels deep, Python's stack is not endless
DATASTORES = ("running", "candidate")


class Store:
    """The device's datastores, as files. The candidate has a file of its own only while it holds changes
    not yet committed; otherwise it reads as running, so that it follows changes made to running directly
    (a learner's edit-config on running is not undone by the next commit)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with (self.directory / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def read(self, name: str) -> ET.Element:
        path = self.directory / f"{name}.xml"
        if not path.exists() and name == "candidate":
            path = self.directory / "running.xml"
        if not path.exists() or not path.stat().st_size:
            return ET.Element(f"{{{NC}}}data")
        return ET.parse(path).getroot()

    def forget(self, name: str) -> None:
        (self.directory / f"{name}.xml").unlink(missing_ok=True)

    def write(self, name: str, data: ET.Element) -> None:
        path = self.directory / f"{name}.xml"
        partial = path.with_suffix(".partial")
        partial.write_bytes(serialize(data))
        partial.replace(path)  # a reader sees the old datastore or the new one, never half of one


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def operational_state(sys_dir: Path) -> list[ET.Element]:
    """The device's state, read from the kernel: every interface with its status, address and counters,
    and the platform and clock."""
    interfaces = ET.Element(f"{{{IF_NS}}}interfaces-state")
    net = sys_dir / "class/net"
    for device in sorted(net.iterdir()) if net.is_dir() else []:
        entry = ET.SubElement(interfaces, f"{{{IF_NS}}}interface")
        ET.SubElement(entry, f"{{{IF_NS}}}name").text = device.name
        ET.SubElement(entry, f"{{{IF_NS}}}oper-status").text = _read(device / "operstate") or "unknown"
        ET.SubElement(entry, f"{{{IF_NS}}}phys-address").text = _read(device / "address")
        statistics = ET.SubElement(entry, f"{{{IF_NS}}}statistics")
        for leaf, counter in (("in-octets", "rx_bytes"), ("in-unicast-pkts", "rx_packets"),
                              ("out-octets", "tx_bytes"), ("out-unicast-pkts", "tx_packets")):  # fmt: skip
            ET.SubElement(statistics, f"{{{IF_NS}}}{leaf}").text = _read(device / "statistics" / counter) or "0"
    system = ET.Element(f"{{{SYS_NS}}}system-state")
    platform_node = ET.SubElement(system, f"{{{SYS_NS}}}platform")
    uname = platform.uname()
    for leaf, value in (("os-name", uname.system), ("os-release", uname.release), ("machine", uname.machine)):
        ET.SubElement(platform_node, f"{{{SYS_NS}}}{leaf}").text = value
    clock = ET.SubElement(system, f"{{{SYS_NS}}}clock")
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    ET.SubElement(clock, f"{{{SYS_NS}}}current-datetime").text = now.isoformat()
    with contextlib.suppress(OSError, ValueError, IndexError):
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        booted = now - datetime.timedelta(seconds=int(uptime))
        ET.SubElement(clock, f"{{{SYS_NS}}}boot-datetime").text = booted.isoformat()
    return [interfaces, system]


class Session:
    def __init__(self, store: Store, sys_dir: Path) -> None:
        self.store, self.sys_dir = store, sys_dir
        self.closed = False

    def _datastore(self, rpc_operation: ET.Element, role: str) -> str:
        holder = rpc_operation.find(f"{{{NC}}}{role}")
        if holder is None or len(holder) != 1:
            raise RpcError("protocol", "missing-element", f"<{role}> must name one datastore")
        name = local_name(holder[0].tag)
        if name not in DATASTORES:
            raise RpcError("protocol", "invalid-value", f"no datastore <{name}>: this device has running and candidate")
        return name

    def handle(self, operation: ET.Element) -> ET.Element | None:
        """The reply's content for one operation: <ok/> (None) or <data>. Raises RpcError."""
        name = local_name(operation.tag)
        if name == "get-config":
            source = self._datastore(operation, "source")
            with self.store.locked():
                data = self.store.read(source)
            return subtree_filter(data, operation.find(f"{{{NC}}}filter"))
        if name == "get":
            with self.store.locked():
                data = self.store.read("running")
            data.extend(operational_state(self.sys_dir))
            return subtree_filter(data, operation.find(f"{{{NC}}}filter"))
        if name == "edit-config":
            target = self._datastore(operation, "target")
            config = operation.find(f"{{{NC}}}config")
            if config is None:
                raise RpcError("protocol", "missing-element", "edit-config needs <config>")
            default = operation.findtext(f"{{{NC}}}default-operation", "merge").strip()
            with self.store.locked():
                data = self.store.read(target)
                edit(data, config, default)
                self.store.write(target, data)
            return None
        if name == "copy-config":
            target = self._datastore(operation, "target")
            origin = operation.find(f"{{{NC}}}source")
            with self.store.locked():
                if origin is not None and (inline := origin.find(f"{{{NC}}}config")) is not None:
                    data = ET.Element(f"{{{NC}}}data")
                    data.extend(copy.deepcopy(child) for child in inline)
                else:
                    data = self.store.read(self._datastore(operation, "source"))
                self.store.write(target, data)
            return None
        if name in ("commit", "discard-changes"):
            with self.store.locked():
                if name == "commit":
                    self.store.write("running", self.store.read("candidate"))
                self.store.forget("candidate")
            return None
        if name in ("lock", "unlock"):
            self._datastore(operation, "target")
            return None  # one device, few users: locks are granted (and not enforced)
        if name == "validate":
            return None
        if name == "close-session":
            self.closed = True
            return None
        raise RpcError(
            "protocol",
            "operation-not-supported",
            f"<{name}>: this device supports get, get-config, edit-config, copy-config, commit, "
            "discard-changes, lock, unlock, validate and close-session",
        )

    def reply(self, message: bytes) -> bytes:
        """The framed-content of the reply to one <rpc> message."""
        if b"<!DOCTYPE" in message or b"<!ENTITY" in message:
            return _error_reply({}, RpcError("protocol", "malformed-message", "DTDs and entities are refused"))
        try:
            rpc = ET.fromstring(message)
        except ET.ParseError as exc:
            return _error_reply({}, RpcError("rpc", "malformed-message", f"not XML: {exc}"))
        attributes = dict(rpc.attrib)
        if rpc.tag != f"{{{NC}}}rpc":
            return _error_reply(
                attributes, RpcError("protocol", "unknown-element", f"expected <rpc>, got <{local_name(rpc.tag)}>")
            )
        if "message-id" not in attributes:
            return _error_reply(attributes, RpcError("rpc", "missing-attribute", "<rpc> needs a message-id"))
        if len(rpc) != 1:
            return _error_reply(attributes, RpcError("protocol", "malformed-message", "one operation per <rpc>"))
        if _depth(rpc) > MAX_DEPTH:  # the datastore's operations recurse: refuse before they would
            nested = f"elements nested deeper than {MAX_DEPTH} levels"
            return _error_reply(attributes, RpcError("protocol", "malformed-message", nested))
        try:
            content = self.handle(rpc[0])
        except RpcError as exc:
            return _error_reply(attributes, exc)
        reply = ET.Element(f"{{{NC}}}rpc-reply", attributes)
        reply.append(content if content is not None else ET.Element(f"{{{NC}}}ok"))
        return serialize(reply)


def _depth(root: ET.Element) -> int:
    """How deep ``root``'s tree goes, counted without recursion."""
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in node)
    return deepest


def _error_reply(attributes: dict[str, str], error: RpcError) -> bytes:
    reply = ET.Element(f"{{{NC}}}rpc-reply", attributes)
    node = ET.SubElement(reply, f"{{{NC}}}rpc-error")
    for leaf, value in (("error-type", error.error_type), ("error-tag", error.tag), ("error-severity", "error"),
                        ("error-message", str(error))):  # fmt: skip
        ET.SubElement(node, f"{{{NC}}}{leaf}").text = value
    return serialize(reply)


def hello() -> bytes:
    node = ET.Element(f"{{{NC}}}hello")
    capabilities = ET.SubElement(node, f"{{{NC}}}capabilities")
    for capability in CAPABILITIES:
        ET.SubElement(capabilities, f"{{{NC}}}capability").text = capability
    ET.SubElement(node, f"{{{NC}}}session-id").text = str(os.getpid())
    return serialize(node)


def serve(store: Store, sys_dir: Path, stdin: int = 0, stdout: int = 1) -> None:
    session = Session(store, sys_dir)
    decoder = Decoder(chunked=False, max_message=MAX_MESSAGE)
    os.write(stdout, encode(b'<?xml version="1.0" encoding="UTF-8"?>' + hello(), False))
    greeted = False
    while not session.closed:
        data = os.read(stdin, 65536)
        if not data:
            return
        decoder.feed(data)
        try:
            for message in decoder.messages():
                if not greeted:
                    greeted = True
                    peer = ET.fromstring(message) if b"<!" not in message else None
                    offered = {c.text for c in peer.iter(f"{{{NC}}}capability")} if peer is not None else set()
                    decoder.chunked = BASE_11 in offered
                    continue
                os.write(stdout, encode(session.reply(message), decoder.chunked))
                if session.closed:
                    return
        except (FramingError, MessageTooLarge, ET.ParseError) as exc:
            print(f"netconf-server: {exc}", file=sys.stderr)
            return


def main() -> None:
    parser = argparse.ArgumentParser(description="A NETCONF server for one session on stdin/stdout")
    parser.add_argument("--store", default="/var/lib/netconf", help="the datastores' directory")
    parser.add_argument("--sys", default="/sys", help="where the kernel's sysfs is (tests point it elsewhere)")
    args = parser.parse_args()
    serve(Store(Path(args.store)), Path(args.sys))


if __name__ == "__main__":
    main()
