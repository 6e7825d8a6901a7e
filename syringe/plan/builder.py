"""The plan: a pure function from a lesson to the ordered Kubernetes objects of one live lesson.

Nothing here performs I/O. The runtime applies the plan's waves in order; objects within a wave are
independent of each other and may be created concurrently. Each kind of object is built by the module
named for it: isolation (the namespace and its fences), networks, volume, credentials, services, pods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from syringe.curriculum.models import Image, Lesson
from syringe.plan import labels
from syringe.plan.addressing import Link, attachments_by_endpoint, plan_links
from syringe.plan.credentials import credentials_secret
from syringe.plan.identity import LiveLessonIdentity
from syringe.plan.isolation import lesson_namespace, namespace_name, network_policy, quota_and_limits, role_binding
from syringe.plan.networks import network_attachment, pod_networks
from syringe.plan.objects import K8sObject
from syringe.plan.pods import endpoint_pod, pod_resources
from syringe.plan.services import endpoint_services
from syringe.plan.settings import PlanSettings
from syringe.plan.volume import lesson_volume


@dataclass
class Plan:
    namespace: str
    waves: list[list[K8sObject]]
    links: list[Link]
    common_labels: dict[str, str] = field(default_factory=dict)
    volume_sources: list[dict[str, Any]] = field(default_factory=list)
    topology: dict[str, Any] = field(default_factory=dict)
    endpoint_images: dict[str, str] = field(default_factory=dict)  # endpoint -> image slug

    @property
    def objects(self) -> list[K8sObject]:
        return [obj for wave in self.waves for obj in wave]


def topology(lesson: Lesson, links: list[Link], stage: int) -> dict[str, Any]:
    """The lesson's wiring as JSON: which interface of which endpoint has which address."""
    endpoints: dict[str, Any] = {e.name: {"interfaces": []} for e in lesson.endpoints}
    for link in links:
        for side, peer in ((link.a, link.b), (link.b, link.a)):
            endpoints[side.endpoint]["interfaces"].append(
                {"name": side.interface, "address": side.address, "peer": peer.endpoint, "connection": link.index}
            )
    return {
        "lesson": lesson.slug,
        "stage": stage,
        "endpoints": endpoints,
        "connections": [
            {"index": link.index, "subnet": link.subnet, "a": link.a.endpoint, "b": link.b.endpoint} for link in links
        ],
    }


def build_plan(
    lesson: Lesson,
    images: Mapping[str, Image],
    stage: int,
    who: LiveLessonIdentity,
    settings: PlanSettings,
    files: Mapping[str, bytes] | None = None,
    namespace_annotations: Mapping[str, str] | None = None,
) -> Plan:
    """Every Kubernetes object of one live lesson of ``lesson`` at ``stage``, in creation order.
    ``namespace_annotations`` is state that others own but that must live on the namespace from its first
    moment (the learner session's token hash, so a restarted Syringe can let the learner back in)."""
    if not 0 <= stage < len(lesson.stages):
        raise ValueError(f"lesson {lesson.slug} has stages 0-{len(lesson.stages) - 1}, not {stage}")
    namespace = namespace_name(settings, who.id)
    common = labels.common_labels(settings.instance, who.id, who.session, lesson.slug)
    links = plan_links(lesson, images, settings.subnet_pool, settings.subnet_prefix)
    wiring = topology(lesson, links, stage)
    config_maps, volume_sources = lesson_volume(lesson, wiring, files, namespace, common)

    requests = [pod_resources(images.get(e.image), settings) for e in lesson.endpoints]
    networks = pod_networks(links)
    attached = attachments_by_endpoint(links)
    pods = [
        endpoint_pod(
            namespace,
            common,
            endpoint,
            images.get(endpoint.image),
            networks.get(endpoint.name, []),
            volume_sources,
            resources,
            settings,
            who.id,
            [side.address for _, side in attached.get(endpoint.name, [])],
        )
        for endpoint, resources in zip(lesson.endpoints, requests, strict=True)
    ]
    services = endpoint_services(namespace, common, lesson.endpoints, who.id, settings)

    waves = [
        [lesson_namespace(namespace, common, stage, who, namespace_annotations or {})],
        [role_binding(namespace, common, settings)],
        [
            network_policy(namespace, common, settings),
            *quota_and_limits(namespace, common, requests, services, settings),
            *[network_attachment(namespace, common, link) for link in links],
            *config_maps,
            credentials_secret(lesson, images, namespace, common),
            *services,
        ],
        # Pods come last: the policy, quota and limits must be in force before the first pod exists.
        pods,
    ]
    return Plan(
        namespace=namespace,
        waves=waves,
        links=links,
        topology=wiring,
        common_labels=dict(common),
        volume_sources=volume_sources,
        endpoint_images={e.name: e.image for e in lesson.endpoints},
    )
