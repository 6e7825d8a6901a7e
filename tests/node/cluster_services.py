"""The two cluster services a node needs that the test harness does not run for real: cluster DNS and the
`kubernetes` Service's ClusterIP. Both stand in for parts of a production cluster (CoreDNS and kube-proxy)
that Debian does not package. Syringe's code never knows the difference: it resolves Service names and
reaches the API server at KUBERNETES_SERVICE_HOST, as it does on any cluster.

- **DNS** on the node IP (the kubelet's clusterDNS), UDP and TCP port 53. It answers
  ``<service>.<namespace>.svc.<domain>`` with the addresses of the Service's ready endpoints (as a headless
  Service's name resolves: there is no kube-proxy to route a ClusterIP), or the ClusterIP this process
  relays. Every other name gets NXDOMAIN: nothing is ever forwarded, so no query leaves the machine.
- **The API server's ClusterIP** (``--service-ip``, the first address of the service range, which is in the
  API server's certificate): a TCP relay from that address, port 443, to the API server on 127.0.0.1. The
  node's pods route that one address to the node (the default network's only route).

Run by scripts/k8s-node.sh with the project's Python; it reads the API with the admin token, as the Multus
stand-in does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import ssl
import time
import urllib.error
import urllib.request
from typing import Any, cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

log = logging.getLogger("cluster-services")
TTL = 2  # seconds: pods come and go with every live lesson
MAX_TCP_MESSAGE = 65535
MAX_CACHED = 1024  # names: a pod asking for endless random ones must not grow this process
# A Service or namespace name (an RFC 1123 label). Queries come from pods, which the tests do not trust: a
# label that is anything else never reaches an API path.
NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class Cluster:
    """Service and endpoint addresses from the API server, cached for a moment."""

    def __init__(self, api: str, token: str, ca_file: str, relayed: dict[str, str]) -> None:
        self.api = api.rstrip("/")
        self.token = token
        self.context = ssl.create_default_context(cafile=ca_file)
        self.relayed = relayed  # ClusterIP -> where it is relayed ("the kubernetes Service")
        self.cache: dict[tuple[str, str], tuple[float, list[str]]] = {}

    def _get(self, path: str) -> Any:
        request = urllib.request.Request(self.api + path, headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=3) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def addresses(self, namespace: str, service: str) -> list[str]:
        key = (namespace, service)
        now = time.monotonic()
        cached = self.cache.get(key)
        if cached is not None and now - cached[0] < 1.0:
            return cached[1]
        if len(self.cache) >= MAX_CACHED:
            self.cache.clear()
        found: list[str] = []
        endpoints = self._get(f"/api/v1/namespaces/{namespace}/endpoints/{service}")
        subsets = (endpoints or {}).get("subsets") or []
        for subset in subsets:
            found += [a["ip"] for a in subset.get("addresses") or [] if a.get("ip")]
        # A Service's name resolves whether or not its pods are ready (CoreDNS answers with the ClusterIP).
        for subset in subsets if not found else []:
            found += [a["ip"] for a in subset.get("notReadyAddresses") or [] if a.get("ip")]
        if not found:
            spec = (self._get(f"/api/v1/namespaces/{namespace}/services/{service}") or {}).get("spec") or {}
            if spec.get("clusterIP") in self.relayed:
                found = [spec["clusterIP"]]
        self.cache[key] = (now, found)
        return found


def answer(query: dns.message.Message, cluster: Cluster, domain: str) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    response.flags &= ~dns.flags.RA
    if len(query.question) != 1:
        response.set_rcode(dns.rcode.FORMERR)
        return response
    question = query.question[0]
    labels = [label.decode(errors="replace").lower() for label in question.name.labels if label]
    suffix = ["svc", *domain.split(".")]
    if len(labels) != 2 + len(suffix) or labels[2:] != suffix:
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response
    service, namespace = labels[0], labels[1]
    if not (NAME.fullmatch(service) and NAME.fullmatch(namespace)):
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response
    try:
        addresses = cluster.addresses(namespace, service)
    except (OSError, ValueError) as exc:
        log.warning("looking up %s/%s: %s", namespace, service, exc)
        response.set_rcode(dns.rcode.SERVFAIL)
        return response
    if not addresses:
        # Unknown Service: NXDOMAIN. A known one with nothing ready yet would be NODATA; both are short-lived.
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response
    if question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
        records = dns.rrset.from_text_list(question.name, TTL, dns.rdataclass.IN, dns.rdatatype.A, addresses)
        response.answer.append(records)
    return response


class DnsUdp(asyncio.DatagramProtocol):
    def __init__(self, cluster: Cluster, domain: str) -> None:
        self.cluster, self.domain = cluster, domain
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().create_task(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:  # noqa: BLE001 - any malformed datagram is dropped
            return
        response = await asyncio.to_thread(answer, query, self.cluster, self.domain)
        if self.transport is not None:
            self.transport.sendto(response.to_wire(max_size=512), addr)


async def dns_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cluster: Cluster, domain: str) -> None:
    with contextlib.suppress(Exception):
        while True:
            size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 30), "big")
            query = dns.message.from_wire(await asyncio.wait_for(reader.readexactly(size), 10))
            wire = (await asyncio.to_thread(answer, query, cluster, domain)).to_wire(max_size=MAX_TCP_MESSAGE)
            writer.write(len(wire).to_bytes(2, "big") + wire)
            await writer.drain()
    writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()


async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int) -> None:
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        log.warning("relay to %s:%d: %s", host, port, exc)
        writer.close()
        return
    await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))


async def serve(args: argparse.Namespace, token: str) -> None:
    api_host, _, api_port = args.api.rpartition(":")
    cluster = Cluster(f"https://{args.api}", token, args.ca_file, {args.service_ip: args.api})
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: DnsUdp(cluster, args.domain), local_addr=(args.dns_ip, 53))
    tcp = await asyncio.start_server(lambda r, w: dns_tcp(r, w, cluster, args.domain), args.dns_ip, 53)
    relayed = await asyncio.start_server(lambda r, w: relay(r, w, api_host, int(api_port)), args.service_ip, 443)
    log.info("DNS on %s:53 for *.svc.%s; %s:443 relayed to %s", args.dns_ip, args.domain, args.service_ip, args.api)
    async with tcp, relayed:
        await asyncio.gather(tcp.serve_forever(), relayed.serve_forever())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dns-ip", required=True, help="the node IP, the kubelet's clusterDNS")
    parser.add_argument("--domain", default="cluster.local")
    parser.add_argument("--service-ip", required=True, help="the kubernetes Service's ClusterIP, on this machine")
    parser.add_argument("--api", required=True, help="the API server, 127.0.0.1:PORT")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--ca-file", required=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parser.parse_args()
    with open(args.token_file) as token_file:
        token = token_file.read().strip()
    asyncio.run(serve(args, token))


if __name__ == "__main__":
    main()
