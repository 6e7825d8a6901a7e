"""The lesson namespace and what fences it in: the Namespace, the RoleBinding that lets Syringe act there
alone, the NetworkPolicy that keeps other namespaces out, the ResourceQuota and LimitRange that cap it."""

from __future__ import annotations

from collections.abc import Mapping

from syringe.plan import labels
from syringe.plan.identity import LiveLessonIdentity
from syringe.plan.objects import K8sObject, metadata
from syringe.plan.quantity import format_mebibytes, format_millicores, mebibytes, millicores
from syringe.plan.settings import PlanSettings


def namespace_name(settings: PlanSettings, livelesson_id: str) -> str:
    return f"{settings.instance}-{livelesson_id}"


def lesson_namespace(
    name: str,
    common: Mapping[str, str],
    stage: int,
    who: LiveLessonIdentity,
    extra: Mapping[str, str],
) -> K8sObject:
    """The Namespace, annotated with the live lesson's state from its first moment (``extra`` first)."""
    annotations = {
        **extra,
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


def role_binding(namespace: str, common: Mapping[str, str], settings: PlanSettings) -> K8sObject:
    """Grants Syringe's account the lesson role in this namespace alone: Syringe can then create, change and
    delete what is in a lesson namespace, and the namespace itself, but nothing in any other namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata("syringe-lesson", namespace, common),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": settings.lesson_cluster_role,
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": settings.service_account, "namespace": settings.syringe_namespace}
        ],
    }


def network_policy(namespace: str, common: Mapping[str, str], settings: PlanSettings) -> K8sObject:
    """Pods talk among themselves, Syringe's namespace may reach them, and they may ask any namespace's DNS."""
    dns_ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata("lesson-isolation", namespace, common),
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


def quota_and_limits(
    namespace: str,
    common: Mapping[str, str],
    requests: list[tuple[int, int]],
    services: list[K8sObject],
    settings: PlanSettings,
) -> list[K8sObject]:
    """A ResourceQuota for the pods' ``requests`` (millicores, MiB) plus headroom for Jobs and the
    ``services``, and a LimitRange that gives a Job's containers their defaults."""
    jobs = len(requests) * settings.jobs_per_endpoint
    job_cpu, job_memory = millicores(settings.job_cpu), mebibytes(settings.job_memory)
    cpu = sum(c for c, _ in requests) + jobs * job_cpu
    memory = sum(m for _, m in requests) + jobs * job_memory
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": metadata("lesson-quota", namespace, common),
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
        "metadata": metadata("lesson-limits", namespace, common),
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
