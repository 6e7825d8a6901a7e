"""The lesson's connections as NetworkAttachmentDefinitions: one node-local Linux bridge per connection,
and the Multus network list each endpoint pod asks for."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from hashlib import sha1
from typing import Any

from syringe.plan import labels
from syringe.plan.addressing import Link, attachments_by_endpoint
from syringe.plan.objects import K8sObject, metadata

NAD_API_VERSION = "k8s.cni.cncf.io/v1"


def bridge_name(namespace: str, index: int) -> str:
    """A Linux bridge name: at most 15 characters, distinct across live lessons sharing a node."""
    digest = sha1(namespace.encode()).hexdigest()[:8]
    return f"sy{digest}-{index}"[:15]


def nad_name(link: Link) -> str:
    name = f"conn{link.index}-{link.a.endpoint}-{link.b.endpoint}"[:63]
    return name.rstrip("-")


def network_attachment(namespace: str, common: Mapping[str, str], link: Link) -> K8sObject:
    """The NetworkAttachmentDefinition of one connection: a bridge, addresses from the link's subnet."""
    name = nad_name(link)
    ipam: dict[str, Any] = {"type": "host-local", "subnet": link.subnet}
    # Keep the two addresses the plan hands out (first and second host) out of host-local's range.
    network = ipaddress.ip_network(link.subnet)
    if network.num_addresses > 4:
        ipam["rangeStart"] = str(network[3])
    config = {
        "cniVersion": "0.3.1",
        "name": name,
        "type": "bridge",
        "bridge": bridge_name(namespace, link.index),
        "isGateway": False,
        "ipMasq": False,
        "ipam": ipam,
    }
    return {
        "apiVersion": NAD_API_VERSION,
        "kind": "NetworkAttachmentDefinition",
        "metadata": metadata(name, namespace, common, **{labels.CONNECTION: str(link.index)}),
        "spec": {"config": json.dumps(config, sort_keys=True)},
    }


def pod_networks(links: list[Link]) -> dict[str, list[dict[str, str]]]:
    """For each endpoint with connections, the networks its pod's Multus annotation lists, in link order."""
    return {
        endpoint: [{"name": nad_name(link), "interface": side.interface} for link, side in attached]
        for endpoint, attached in attachments_by_endpoint(links).items()
    }
