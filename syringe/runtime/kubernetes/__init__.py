"""The Kubernetes runtime: the production implementation of the runtime protocol."""

from syringe.runtime.kubernetes.runtime import KubernetesRuntime, api_client_from

__all__ = ["KubernetesRuntime", "api_client_from"]
