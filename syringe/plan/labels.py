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
# On a Job and its pod: what it is for (plan/jobs.py: configuration or verification). An endpoint's pod has
# none, which is how a pod watch tells the two apart.
PURPOSE = "syringe.io/purpose"
# On a learner-session Secret in Syringe's own namespace: what kind of shared record it is.
SESSION_KIND = "syringe.io/kind"

# The live lesson's state, as namespace annotations. STAGE is also a label on a stage's Jobs.
STAGE = "syringe.io/stage"
STATUS = "syringe.io/status"
CREATED_AT = "syringe.io/created-at"
EXPIRES_AT = "syringe.io/expires-at"
ERROR = "syringe.io/error"
PERSISTENT = "syringe.io/persistent"
GENERATION = "syringe.io/generation"
# The learner session's, on each of its namespaces, so a restarted Syringe lets the learner back in.
SESSION_TOKEN = "syringe.io/session-token-sha256"
SESSION_EXPIRES_AT = "syringe.io/session-expires-at"

# Multus: a pod's extra interfaces, as JSON.
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
