"""The labels and annotations Syringe puts on what it creates. Also read back when recovering state."""

from __future__ import annotations

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "syringe"
INSTANCE = "syringe.io/instance"
LIVELESSON = "syringe.io/livelesson"
SESSION = "syringe.io/session"
LESSON = "syringe.io/lesson"
ENDPOINT = "syringe.io/endpoint"
CONNECTION = "syringe.io/connection"
EXTERNAL = "syringe.io/external"

STAGE = "syringe.io/stage"
STATUS = "syringe.io/status"
CREATED_AT = "syringe.io/created-at"
EXPIRES_AT = "syringe.io/expires-at"
NETWORKS = "k8s.v1.cni.cncf.io/networks"


def common_labels(instance: str, livelesson: str, session: str, lesson: str) -> dict[str, str]:
    return {
        MANAGED_BY: MANAGED_BY_VALUE,
        INSTANCE: instance,
        LIVELESSON: livelesson,
        SESSION: session,
        LESSON: lesson,
    }


def instance_selector(instance: str) -> str:
    """A label selector for everything one Syringe instance manages."""
    return f"{MANAGED_BY}={MANAGED_BY_VALUE},{INSTANCE}={instance}"
