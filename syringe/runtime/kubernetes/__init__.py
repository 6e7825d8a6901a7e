"""The Kubernetes runtime: the production implementation of the runtime protocol."""

from syringe.runtime.kubernetes.connecting import api_client_from
from syringe.runtime.kubernetes.runtime import KubernetesRuntime

__all__ = ["KubernetesRuntime", "api_client_from"]
