"""The lesson's connections as NetworkAttachmentDefinitions: one node-local Linux bridge per connection,
and the Multus network list each endpoint pod asks for."""

from __future__ import annotations

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
    """The NetworkAttachmentDefinition of one connection: a node-local bridge, with static IPAM.

    Each pod's network selection carries its planned address in ``ips`` (Multus hands it to the plugin as
    runtimeConfig, which the ``ips`` capability asks for), so a container endpoint is addressed as its pod
    starts, with no login afterwards. A VM's wrapper takes the address off its pod's interface and gives it
    to the guest, on the kernel command line (the pod's interface only carries frames to and from the VM).
    """
    name = nad_name(link)
    config = {
        "cniVersion": "0.3.1",
        "name": name,
        "type": "bridge",
        "bridge": bridge_name(namespace, link.index),
        "isGateway": False,
        "ipMasq": False,
        "capabilities": {"ips": True},
        "ipam": {"type": "static"},
    }
    return {
        "apiVersion": NAD_API_VERSION,
        "kind": "NetworkAttachmentDefinition",
        "metadata": metadata(name, namespace, common, **{labels.CONNECTION: str(link.index)}),
        "spec": {"config": json.dumps(config, sort_keys=True)},
    }


def pod_networks(links: list[Link]) -> dict[str, list[dict[str, Any]]]:
    """For each endpoint with connections, the networks its pod's Multus annotation lists, in link order:
    each with the interface name and the planned address."""
    return {
        endpoint: [
            {"name": nad_name(link), "interface": side.interface, "ips": [side.address]} for link, side in attached
        ]
        for endpoint, attached in attachments_by_endpoint(links).items()
    }
