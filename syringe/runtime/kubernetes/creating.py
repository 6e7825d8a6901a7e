"""Creating a plan's objects: the right client method for each kind, idempotently."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client

from syringe.plan.networks import NAD_API_VERSION

NAD_GROUP, NAD_VERSION = NAD_API_VERSION.split("/")
NAD_PLURAL = "network-attachment-definitions"


def raw_body(call: Callable[..., Any], *args: Any, **kwargs: Any) -> bytes:
    """Make a client call without model deserialisation. The body is read in full and the connection handed
    back to the pool; an unread response would cost a new TLS handshake on the next call."""
    response = call(*args, _preload_content=False, **kwargs)
    try:
        data: bytes = response.data
    finally:
        response.release_conn()
    return data


class Creators:
    """Maps an object's kind to the typed client call that creates it."""

    def __init__(self, api: client.ApiClient) -> None:
        core = client.CoreV1Api(api)
        networking = client.NetworkingV1Api(api)
        batch = client.BatchV1Api(api)
        custom = client.CustomObjectsApi(api)
        rbac = client.RbacAuthorizationV1Api(api)
        self._namespaced: dict[str, Callable[..., Any]] = {
            "Pod": core.create_namespaced_pod,
            "Service": core.create_namespaced_service,
            "ConfigMap": core.create_namespaced_config_map,
            "Secret": core.create_namespaced_secret,
            "ResourceQuota": core.create_namespaced_resource_quota,
            "LimitRange": core.create_namespaced_limit_range,
            "NetworkPolicy": networking.create_namespaced_network_policy,
            "Job": batch.create_namespaced_job,
            "RoleBinding": rbac.create_namespaced_role_binding,
        }
        self._readers: dict[str, Callable[..., Any]] = {
            "Pod": core.read_namespaced_pod,
            "Service": core.read_namespaced_service,
            "ConfigMap": core.read_namespaced_config_map,
            "Secret": core.read_namespaced_secret,
            "ResourceQuota": core.read_namespaced_resource_quota,
            "LimitRange": core.read_namespaced_limit_range,
            "NetworkPolicy": networking.read_namespaced_network_policy,
            "Job": batch.read_namespaced_job,
            "RoleBinding": rbac.read_namespaced_role_binding,
        }
        self._create_namespace = core.create_namespace
        self._custom = custom

    def for_object(self, obj: dict[str, Any]) -> Callable[..., bytes]:
        """The create call (it takes the client's call options), returning the reply's raw JSON: turning
        every reply into the client's model objects costs more CPU than the request itself."""
        kind = obj["kind"]
        if kind == "Namespace":
            return lambda **options: raw_body(self._create_namespace, obj, **options)
        namespace = obj["metadata"]["namespace"]
        if kind == "NetworkAttachmentDefinition":
            return lambda **options: raw_body(
                self._custom.create_namespaced_custom_object,
                NAD_GROUP,
                NAD_VERSION,
                namespace,
                NAD_PLURAL,
                obj,
                **options,
            )
        create = self._namespaced.get(kind)
        if create is None:
            raise ValueError(f"the Kubernetes runtime cannot create a {kind}")
        return lambda **options: raw_body(create, namespace, obj, **options)

    def reader_for(self, obj: dict[str, Any]) -> Callable[..., Any]:
        """The call that reads the object back (to tell "already there" from a real refusal)."""
        name, namespace = obj["metadata"]["name"], obj["metadata"].get("namespace")
        if obj["kind"] == "NetworkAttachmentDefinition":
            return lambda **options: self._custom.get_namespaced_custom_object(
                NAD_GROUP, NAD_VERSION, namespace, NAD_PLURAL, name, **options
            )
        read = self._readers[obj["kind"]]
        return lambda **options: read(name, namespace, **options)
