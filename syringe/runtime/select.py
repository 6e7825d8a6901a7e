"""Choosing the runtime from settings: a cluster when one is configured, else local VMs."""

from __future__ import annotations

import os

from syringe.curriculum import CurriculumTree
from syringe.errors import NoCluster, RuntimeUnavailable
from syringe.runtime.kubernetes import KubernetesRuntime, api_client_from
from syringe.runtime.local.runtime import LocalRuntime
from syringe.settings import Settings


def kubeconfig_path(settings: Settings) -> str | None:
    """The kubeconfig to use: the setting, else $KUBECONFIG, else none (in-cluster or no cluster)."""
    return settings.kubeconfig or os.environ.get("KUBECONFIG") or None


def cluster_configured(settings: Settings) -> bool:
    return kubeconfig_path(settings) is not None or bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def runtime_from_settings(settings: Settings, tree: CurriculumTree | None = None) -> KubernetesRuntime | LocalRuntime:
    """The cluster's runtime when one is configured; else, given the curriculum, local VMs."""
    path = kubeconfig_path(settings)
    if not cluster_configured(settings):
        if tree is not None and settings.local.enabled:
            return LocalRuntime(tree.root, tree.images, settings.plan.instance, settings.local)
        local = (
            "; live lessons on local VMs belong to the process that runs them (syringe serve, syringe up)"
            if settings.local.enabled
            else ""
        )
        raise NoCluster(
            "no Kubernetes cluster configured: set SYRINGE_KUBECONFIG (or KUBECONFIG), or run Syringe in a pod" + local
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
