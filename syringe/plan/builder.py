"""The plan: a pure function from a lesson to the ordered Kubernetes objects of one live lesson.

Nothing here performs I/O. The runtime applies the plan's waves in order; objects within a wave are
independent of each other and may be created concurrently.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from hashlib import sha1
from typing import Any

from syringe.curriculum.models import Endpoint, Image, Lesson
from syringe.plan import labels
from syringe.plan.addressing import Link, attachments_by_endpoint, plan_links
from syringe.plan.files import pack_files
from syringe.plan.identity import LiveLessonIdentity
from syringe.plan.quantity import format_mebibytes, format_millicores, mebibytes, millicores
from syringe.plan.settings import PlanSettings

K8sObject = dict[str, Any]

NAD_API_VERSION = "k8s.cni.cncf.io/v1"
TOPOLOGY_FILE = ".syringe/topology.json"
CHECKS_FILE = ".syringe/checks.json"
FILES_PREFIX = "lesson-files"
DEFAULT_RESOURCES = {"cpu": "250m", "memory": "256Mi"}


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


def namespace_name(settings: PlanSettings, livelesson_id: str) -> str:
    return f"{settings.instance}-{livelesson_id}"


def bridge_name(namespace: str, index: int) -> str:
    """A Linux bridge name: at most 15 characters, distinct across live lessons sharing a node."""
    digest = sha1(namespace.encode()).hexdigest()[:8]
    return f"sy{digest}-{index}"[:15]


def nad_name(link: Link) -> str:
    name = f"conn{link.index}-{link.a.endpoint}-{link.b.endpoint}"[:63]
    return name.rstrip("-")


def _metadata(name: str, namespace: str, common: Mapping[str, str], **extra: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": {**common, **extra}}


def _namespace(name: str, common: Mapping[str, str], lesson: Lesson, stage: int, who: LiveLessonIdentity) -> K8sObject:
    annotations = {
        labels.STAGE: str(stage),
        labels.STATUS: "INITIALIZED",
        labels.CREATED_AT: who.created_at.isoformat(),
    }
    if who.expires_at is not None:
        annotations[labels.EXPIRES_AT] = who.expires_at.isoformat()
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(common), "annotations": annotations},
    }


def _role_binding(namespace: str, common: Mapping[str, str], settings: PlanSettings) -> K8sObject:
    """Grants Syringe's account the lesson role in this namespace alone: Syringe can then create, change and
    delete what is in a lesson namespace, and the namespace itself, but nothing in any other namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata("syringe-lesson", namespace, common),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": settings.lesson_cluster_role,
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": settings.service_account, "namespace": settings.syringe_namespace}
        ],
    }


def _network_policy(namespace: str, common: Mapping[str, str], settings: PlanSettings) -> K8sObject:
    dns_ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata("lesson-isolation", namespace, common),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [{"podSelector": {}}]},
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": settings.syringe_namespace}
                            }
                        }
                    ]
                },
            ],
            "egress": [
                {"to": [{"podSelector": {}}]},
                {"to": [{"namespaceSelector": {}}], "ports": dns_ports},
            ],
        },
    }


def _pod_resources(image: Image | None, settings: PlanSettings) -> tuple[int, int]:
    """(millicores, MiB) requested by an endpoint's pod."""
    if image is not None and image.kind == "vm" and image.vm is not None:
        cpu = image.vm.cpus * 1000
        memory = mebibytes(image.vm.memory) + mebibytes(settings.vm_overhead_memory)
        if image.resources is not None:
            cpu, memory = max(cpu, millicores(image.resources.cpu)), max(memory, mebibytes(image.resources.memory))
        return cpu, memory
    resources = image.resources if image is not None and image.resources is not None else None
    cpu_request = resources.cpu if resources else DEFAULT_RESOURCES["cpu"]
    memory_request = resources.memory if resources else DEFAULT_RESOURCES["memory"]
    return millicores(cpu_request), mebibytes(memory_request)


def _quota(
    namespace: str,
    common: Mapping[str, str],
    requests: list[tuple[int, int]],
    services: list[K8sObject],
    settings: PlanSettings,
) -> list[K8sObject]:
    jobs = len(requests) * settings.jobs_per_endpoint
    job_cpu, job_memory = millicores(settings.job_cpu), mebibytes(settings.job_memory)
    cpu = sum(c for c, _ in requests) + jobs * job_cpu
    memory = sum(m for _, m in requests) + jobs * job_memory
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _metadata("lesson-quota", namespace, common),
        "spec": {
            "hard": {
                "pods": str(len(requests) + jobs),
                "requests.cpu": format_millicores(cpu),
                "requests.memory": format_mebibytes(memory),
                "limits.cpu": format_millicores(cpu * 2),
                "limits.memory": format_mebibytes(memory * 2),
                "services": str(len(services)),
                "services.nodeports": str(
                    sum(len(s["spec"]["ports"]) for s in services if s["spec"]["type"] != "ClusterIP")
                ),
            }
        },
    }
    limits = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _metadata("lesson-limits", namespace, common),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "defaultRequest": {"cpu": settings.job_cpu, "memory": settings.job_memory},
                    "default": {
                        "cpu": format_millicores(job_cpu * 2),
                        "memory": format_mebibytes(job_memory * 2),
                    },
                }
            ]
        },
    }
    return [quota, limits]


def _nad(namespace: str, common: Mapping[str, str], link: Link) -> K8sObject:
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
        "metadata": _metadata(name, namespace, common, **{labels.CONNECTION: str(link.index)}),
        "spec": {"config": json.dumps(config, sort_keys=True)},
    }


def port_name(kind: str, port: int) -> str:
    """An IANA service name (at most 15 characters) that is unique per port."""
    return f"{kind}-{port}"


def endpoint_ports(endpoint: Endpoint) -> list[tuple[str, int]]:
    kinds: dict[int, str] = {}
    for presentation in endpoint.presentations:
        kinds.setdefault(presentation.port, presentation.type)
    return [(port_name(kinds.get(port, "tcp"), port), port) for port in endpoint.ports()]


def _security(image: Image | None, settings: PlanSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(container securityContext, extra pod spec fields) for the image's flavor."""
    flavor = image.flavor if image is not None else "untrusted"
    kind = image.kind if image is not None else "container"
    pod: dict[str, Any] = {}
    if flavor == "trusted" and kind == "vm":
        return {"privileged": True}, pod
    if flavor == "untrusted" and settings.untrusted_runtime_class:
        pod["runtimeClassName"] = settings.untrusted_runtime_class
    context: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_ADMIN"]},
    }
    return context, pod


# A QEMU wrapper's pod is ready when its launcher says the VM is (syringe launch --health).
VM_READINESS: dict[str, Any] = {
    "exec": {"command": ["syringe", "launch", "--health"]},
    "periodSeconds": 2,
    "failureThreshold": 1,
}


def _pod(
    namespace: str,
    common: Mapping[str, str],
    endpoint: Endpoint,
    image: Image | None,
    networks: list[dict[str, str]],
    volume_sources: list[dict[str, Any]],
    resources: tuple[int, int],
    settings: PlanSettings,
    livelesson: str,
) -> K8sObject:
    cpu, memory = resources
    limits: dict[str, str] = {"cpu": format_millicores(cpu * 2), "memory": format_mebibytes(memory * 2)}
    requests: dict[str, str] = {"cpu": format_millicores(cpu), "memory": format_mebibytes(memory)}
    kind = image.kind if image is not None else "container"
    if kind == "vm" and settings.kvm_resource:
        limits[settings.kvm_resource] = "1"
        requests[settings.kvm_resource] = "1"
    env = [
        {"name": "SYRINGE_ENDPOINT", "value": endpoint.name},
        {"name": "SYRINGE_LESSON_DIR", "value": settings.lesson_mount_path},
        {"name": "SYRINGE_TOPOLOGY", "value": f"{settings.lesson_mount_path}/{TOPOLOGY_FILE}"},
    ]
    if image is not None and image.vm is not None:
        env += [
            {"name": "SYRINGE_VM_MEMORY_MIB", "value": str(mebibytes(image.vm.memory))},
            {"name": "SYRINGE_VM_CPUS", "value": str(image.vm.cpus)},
            {"name": "SYRINGE_VM_DISK", "value": image.vm.disk},
            # The wrapper's launcher waits for this many data interfaces (eth1..N) before it boots the VM.
            {"name": "SYRINGE_VM_INTERFACES", "value": str(len(networks))},
        ]
        if endpoint.additional_ports:
            env.append({"name": "SYRINGE_VM_PORTS", "value": ",".join(str(p) for p in endpoint.additional_ports)})
    security, pod_extra = _security(image, settings)
    metadata = _metadata(endpoint.name, namespace, common, **{labels.ENDPOINT: endpoint.name})
    if networks:
        metadata["annotations"] = {labels.NETWORKS: json.dumps(networks)}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "hostname": endpoint.name,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 5,
            **pod_extra,
            "affinity": {
                # Bridges are node-local: every pod of a live lesson must land on the same node.
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": {labels.LIVELESSON: livelesson}},
                            "topologyKey": "kubernetes.io/hostname",
                        }
                    ]
                }
            },
            "containers": [
                {
                    "name": "endpoint",
                    "image": f"{settings.image_registry}/{endpoint.image}:{settings.image_tag}",
                    "imagePullPolicy": settings.image_pull_policy,
                    "ports": [
                        {"name": name, "containerPort": port, "protocol": "TCP"}
                        for name, port in endpoint_ports(endpoint)
                    ],
                    "env": env,
                    "resources": {"requests": requests, "limits": limits},
                    "securityContext": security,
                    **({"readinessProbe": VM_READINESS} if image is not None and image.kind == "vm" else {}),
                    "volumeMounts": [
                        {"name": "lesson-files", "mountPath": settings.lesson_mount_path, "readOnly": True}
                    ],
                }
            ],
            "volumes": [{"name": "lesson-files", "projected": {"sources": volume_sources}}],
        },
    }


def _service(namespace: str, common: Mapping[str, str], endpoint: Endpoint, livelesson: str) -> K8sObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(endpoint.name, namespace, common, **{labels.ENDPOINT: endpoint.name}),
        "spec": {
            "type": "ClusterIP",
            "selector": {labels.LIVELESSON: livelesson, labels.ENDPOINT: endpoint.name},
            "ports": [
                {"name": name, "port": port, "targetPort": port, "protocol": "TCP"}
                for name, port in endpoint_ports(endpoint)
            ],
        },
    }


CREDENTIALS_SECRET = "lesson-credentials"


def credentials_secret(
    lesson: Lesson, images: Mapping[str, Image], namespace: str, common: Mapping[str, str]
) -> K8sObject:
    """The configurators' credentials for each endpoint, from its image (configUser, else sshUser). Jobs
    read them from here, never from literals in their spec."""
    data: dict[str, str] = {}
    for endpoint in lesson.endpoints:
        image = images.get(endpoint.image)
        if image is None:
            continue
        data[f"{endpoint.name}.username"] = image.config_user or image.ssh_user
        data[f"{endpoint.name}.password"] = image.config_password or image.ssh_password
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(CREDENTIALS_SECRET, namespace, common),
        "type": "Opaque",
        "stringData": data,
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
        "metadata": _metadata(
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
) -> Plan:
    """Every Kubernetes object of one live lesson of ``lesson`` at ``stage``, in creation order."""
    if not 0 <= stage < len(lesson.stages):
        raise ValueError(f"lesson {lesson.slug} has stages 0-{len(lesson.stages) - 1}, not {stage}")
    namespace = namespace_name(settings, who.id)
    common = labels.common_labels(settings.instance, who.id, who.session, lesson.slug)
    links = plan_links(lesson, images, settings.subnet_pool, settings.subnet_prefix)
    wiring = topology(lesson, links, stage)

    packed = dict(files or {})
    packed[TOPOLOGY_FILE] = json.dumps(wiring, indent=2, sort_keys=True).encode()
    if any(stage_spec.verify for stage_spec in lesson.stages):
        checks = {str(i): [c.model_dump(mode="json") for c in st.verify] for i, st in enumerate(lesson.stages)}
        packed[CHECKS_FILE] = json.dumps(checks, indent=2, sort_keys=True).encode()
    chunks = pack_files(packed, FILES_PREFIX)
    config_maps = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _metadata(chunk.name, namespace, common),
            **({"data": chunk.data} if chunk.data else {}),
            **({"binaryData": chunk.binary_data} if chunk.binary_data else {}),
        }
        for chunk in chunks
    ]
    volume_sources = [{"configMap": {"name": chunk.name, "items": chunk.items}} for chunk in chunks]

    requests = [_pod_resources(images.get(e.image), settings) for e in lesson.endpoints]
    attached = attachments_by_endpoint(links)
    pods = []
    for endpoint, resources in zip(lesson.endpoints, requests, strict=True):
        networks = [
            {"name": nad_name(link), "interface": side.interface} for link, side in attached.get(endpoint.name, [])
        ]
        pods.append(
            _pod(
                namespace,
                common,
                endpoint,
                images.get(endpoint.image),
                networks,
                volume_sources,
                resources,
                settings,
                who.id,
            )
        )
    services = [_service(namespace, common, e, who.id) for e in lesson.endpoints]
    services += [
        external
        for e in lesson.endpoints
        if (external := _external_service(namespace, common, e, who.id, settings)) is not None
    ]

    waves = [
        [_namespace(namespace, common, lesson, stage, who)],
        [_role_binding(namespace, common, settings)],
        [
            _network_policy(namespace, common, settings),
            *_quota(namespace, common, requests, services, settings),
            *[_nad(namespace, common, link) for link in links],
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
