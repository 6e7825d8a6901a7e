"""Interface names and addresses for each connection: deterministic, so every stage agrees on them."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from syringe.curriculum.models import Image, Lesson

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Attachment:
    """One side of a connection: which endpoint, which interface, which address."""

    endpoint: str
    interface: str
    address: str  # with prefix length, e.g. 10.12.0.1/24


@dataclass(frozen=True)
class Link:
    index: int
    subnet: str
    a: Attachment
    b: Attachment


def default_interface_name(image: Image | None, position: int) -> str:
    """The name of an endpoint's ``position``-th (0-based) data interface."""
    if image is not None and position < len(image.network_interfaces):
        return image.network_interfaces[position]
    prefix = "eth" if image is not None and image.kind == "vm" else "net"
    return f"{prefix}{position + 1}"


def _pool_subnets(pool: Network, prefix: int, taken: list[Network]) -> Iterator[Network]:
    for candidate in pool.subnets(new_prefix=prefix):
        if not any(candidate.overlaps(other) for other in taken):
            yield candidate


def _two_hosts(network: Network) -> tuple[str, str]:
    if network.num_addresses == 2:  # /31 or /127: both addresses are usable
        first, second = network[0], network[1]
    else:
        first, second = network[1], network[2]
    return f"{first}/{network.prefixlen}", f"{second}/{network.prefixlen}"


def plan_links(lesson: Lesson, images: Mapping[str, Image], pool: str, prefix: int) -> list[Link]:
    """Subnets and addresses for every connection, in connection order.

    A connection's own subnet wins. The others take the next free subnet of ``prefix`` from ``pool``,
    skipping any that overlap a subnet the lesson names. The ``a`` side gets the first host, ``b`` the second.
    """
    explicit = [ipaddress.ip_network(c.subnet) for c in lesson.connections if c.subnet]
    free = _pool_subnets(ipaddress.ip_network(pool), prefix, explicit)
    used: dict[str, int] = {}
    links = []
    for index, connection in enumerate(lesson.connections):
        network = ipaddress.ip_network(connection.subnet) if connection.subnet else next(free)
        first, second = _two_hosts(network)
        sides = []
        for name, address in ((connection.a, first), (connection.b, second)):
            image = images.get(lesson.endpoint(name).image)
            position = used.get(name, 0)
            used[name] = position + 1
            sides.append(Attachment(name, default_interface_name(image, position), address))
        links.append(Link(index=index, subnet=str(network), a=sides[0], b=sides[1]))
    return links


def attachments_by_endpoint(links: list[Link]) -> dict[str, list[tuple[Link, Attachment]]]:
    result: dict[str, list[tuple[Link, Attachment]]] = {}
    for link in links:
        for side in (link.a, link.b):
            result.setdefault(side.endpoint, []).append((link, side))
    return result
