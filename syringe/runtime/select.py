"""Choosing the runtime from settings."""

from __future__ import annotations

import os

from syringe.errors import NoCluster, RuntimeUnavailable
from syringe.runtime.kubernetes import KubernetesRuntime, api_client_from
from syringe.settings import Settings


def kubeconfig_path(settings: Settings) -> str | None:
    """The kubeconfig to use: the setting, else $KUBECONFIG, else none (in-cluster or no cluster)."""
    return settings.kubeconfig or os.environ.get("KUBECONFIG") or None


def runtime_from_settings(settings: Settings) -> KubernetesRuntime:
    path = kubeconfig_path(settings)
    if path is None and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        raise NoCluster(
            "no Kubernetes cluster configured: set SYRINGE_KUBECONFIG (or KUBECONFIG), or run Syringe in a pod"
        )
    threads = settings.lifecycle.api_threads
    try:
        api = api_client_from(path, pool_size=threads + 6)
    except Exception as exc:  # a broken kubeconfig is a configuration problem
        raise RuntimeUnavailable(f"cannot use kubeconfig {path}: {exc}") from exc
    return KubernetesRuntime(
        api,
        settings.plan.instance,
        max_threads=threads,
        apply_timeout=settings.lifecycle.apply_timeout,
        lesson_role=settings.plan.lesson_cluster_role,
        home_namespace=settings.plan.syringe_namespace,
    )
