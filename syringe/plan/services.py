"""An endpoint's Services: a ClusterIP one for every port, and an external one (NodePort or LoadBalancer)
for the presentations the expose setting names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from syringe.curriculum.models import Endpoint
from syringe.plan import labels
from syringe.plan.objects import K8sObject, metadata
from syringe.plan.pods import endpoint_ports, port_name
from syringe.plan.settings import PlanSettings


def _cluster_service(namespace: str, common: Mapping[str, str], endpoint: Endpoint, livelesson: str) -> K8sObject:
    """Inside the lesson an endpoint is reached by name as soon as its pod has an address, Ready or not
    (publishNotReadyAddresses): the lesson's own clients, the configuration Jobs started while the endpoints
    boot and the other endpoints, wait for the protocol they speak themselves, as on a lab network. Waiting
    for readiness as well would add the readiness probe's period, the endpoints controller and the Service
    proxy's sync to every launch. Readiness still gates what learners reach: the external Service, and the
    access Syringe hands out after its own probes."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(endpoint.name, namespace, common, **{labels.ENDPOINT: endpoint.name}),
        "spec": {
            "type": "ClusterIP",
            "publishNotReadyAddresses": True,
            "selector": {labels.LIVELESSON: livelesson, labels.ENDPOINT: endpoint.name},
            "ports": [
                {"name": name, "port": port, "targetPort": port, "protocol": "TCP"}
                for name, port in endpoint_ports(endpoint)
            ],
        },
    }


def _external_service(
    namespace: str, common: Mapping[str, str], endpoint: Endpoint, livelesson: str, settings: PlanSettings
) -> K8sObject | None:
    """A NodePort (or LoadBalancer) Service for the presentations the expose setting names, if any."""
    ports = [(port_name(p.type, p.port), p.port) for p in endpoint.presentations if p.type in settings.expose]
    if not ports:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(
            f"{endpoint.name}-external"[:63],
            namespace,
            common,
            **{labels.ENDPOINT: endpoint.name, labels.EXTERNAL: "true"},
        ),
        "spec": {
            "type": settings.expose_service_type,
            "selector": {labels.LIVELESSON: livelesson, labels.ENDPOINT: endpoint.name},
            "ports": [{"name": name, "port": port, "targetPort": port, "protocol": "TCP"} for name, port in ports],
        },
    }


def endpoint_services(
    namespace: str, common: Mapping[str, str], endpoints: Sequence[Endpoint], livelesson: str, settings: PlanSettings
) -> list[K8sObject]:
    """Every endpoint's ClusterIP Service, then the external ones, in endpoint order."""
    services = [_cluster_service(namespace, common, e, livelesson) for e in endpoints]
    services += [
        external
        for e in endpoints
        if (external := _external_service(namespace, common, e, livelesson, settings)) is not None
    ]
    return services
