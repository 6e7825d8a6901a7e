"""Addressing: where an endpoint is reached. Syringe dials it by the address mode (its Service's DNS name, its
Service's ClusterIP, or its pod's IP); learners' own clients at the node ports of its external Service. The
Services' ClusterIPs and node ports are remembered as they are created and listed."""

from __future__ import annotations

from typing import Any

from syringe.plan import labels
from syringe.runtime.base import EndpointObservation, Exposure, Reach
from syringe.runtime.kubernetes.observing import observe_pod
from syringe.settings import KubernetesSettings


class Addresses:
    """The Services seen so far, by (namespace, endpoint), and the endpoint observations that use them."""

    def __init__(self, settings: KubernetesSettings) -> None:
        self.settings = settings
        self._service_ips: dict[tuple[str, str], str] = {}
        self._node_ports: dict[tuple[str, str], dict[int, int]] = {}

    def remember(self, service: dict[str, Any]) -> None:
        """A Service's ClusterIP (for the cluster-ip address mode) and node ports (for exposed presentations)."""
        metadata, spec = service.get("metadata") or {}, service.get("spec") or {}
        endpoint = (metadata.get("labels") or {}).get(labels.ENDPOINT)
        if not endpoint:
            return
        key = (metadata.get("namespace") or "", endpoint)
        if (metadata.get("labels") or {}).get(labels.EXTERNAL) == "true":
            self._node_ports[key] = {p["port"]: p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort")}
        elif spec.get("clusterIP"):
            self._service_ips[key] = spec["clusterIP"]

    def observe(self, pod: dict[str, Any]) -> EndpointObservation | None:
        """An endpoint's pod as an observation, with how Syringe and learners reach it (None: not an endpoint)."""
        metadata = pod.get("metadata") or {}
        key = (metadata.get("namespace") or "", (metadata.get("labels") or {}).get(labels.ENDPOINT, ""))
        # Presentations the plan exposes are reached at the node ports of the endpoint's external Service.
        exposure = Exposure(self.settings.external_host, self._node_ports.get(key, {}), complete=False)
        return observe_pod(pod, self.reach, exposure)

    def reach(self, namespace: str, endpoint: str, pod_ip: str | None) -> Reach | None:
        """Where Syringe dials an endpoint, by the address mode: its Service's DNS name (in the cluster), its
        Service's ClusterIP, or its pod's IP (out of cluster)."""
        mode = self.settings.address_mode
        if mode == "pod-ip":
            return Reach(pod_ip) if pod_ip else None
        if mode == "cluster-ip":
            service_ip = self._service_ips.get((namespace, endpoint))
            return Reach(service_ip) if service_ip else None
        return Reach(f"{endpoint}.{namespace}.svc.{self.settings.cluster_domain}")
