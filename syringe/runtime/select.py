"""Choosing the runtime from settings. Runtimes register by name; with no name set, a cluster is used when
one is configured, else local VMs. The core gets a ``Runtime`` and never asks which one it is."""

from __future__ import annotations

import os
from collections.abc import Callable

from syringe.curriculum import CurriculumTree
from syringe.errors import NoCluster, RuntimeUnavailable
from syringe.runtime.base import Runtime
from syringe.settings import Settings

RuntimeFactory = Callable[[Settings, CurriculumTree | None], Runtime]


def kubeconfig_path(settings: Settings) -> str | None:
    """The kubeconfig to use: the setting, else $KUBECONFIG, else none (in-cluster or no cluster)."""
    return settings.kubeconfig or os.environ.get("KUBECONFIG") or None


def cluster_configured(settings: Settings) -> bool:
    return kubeconfig_path(settings) is not None or bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def _kubernetes(settings: Settings, tree: CurriculumTree | None) -> Runtime:
    from syringe.runtime.kubernetes import KubernetesRuntime, api_client_from

    path = kubeconfig_path(settings)
    try:
        api = api_client_from(path, pool_size=settings.kubernetes.api_threads + 6)
    except Exception as exc:  # a broken kubeconfig is a configuration problem
        raise RuntimeUnavailable(f"cannot use kubeconfig {path}: {exc}") from exc
    return KubernetesRuntime(
        api,
        settings.plan.instance,
        settings.kubernetes,
        apply_timeout=settings.lifecycle.apply_timeout,
        lesson_role=settings.plan.lesson_cluster_role,
        home_namespace=settings.plan.syringe_namespace,
    )


def _local(settings: Settings, tree: CurriculumTree | None) -> Runtime:
    from syringe.runtime.local.runtime import LocalRuntime

    if tree is None or not settings.local.enabled:
        local = (
            "; live lessons on local VMs belong to the process that runs them (syringe serve, syringe up)"
            if settings.local.enabled
            else ""
        )
        raise NoCluster(
            "no Kubernetes cluster configured: set SYRINGE_KUBECONFIG (or KUBECONFIG), or run Syringe in a pod" + local
        )
    return LocalRuntime(tree.root, tree.images, settings.plan.instance, settings.local)


RUNTIMES: dict[str, RuntimeFactory] = {"kubernetes": _kubernetes, "local": _local}


def runtime_from_settings(settings: Settings, tree: CurriculumTree | None = None) -> Runtime:
    """The cluster's runtime when one is configured; else, given the curriculum, local VMs."""
    name = "kubernetes" if cluster_configured(settings) else "local"
    return RUNTIMES[name](settings, tree)
