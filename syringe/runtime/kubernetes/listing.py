"""Listing: every live lesson of an instance as a record (its namespace, and its endpoints as observed), from
three list calls (namespaces, pods, Services), so that a fresh process can rebuild its state."""

from __future__ import annotations

import asyncio
import json

from kubernetes import client

from syringe.runtime.base import EndpointObservation, LiveLessonRecord
from syringe.runtime.kubernetes.addressing import Addresses
from syringe.runtime.kubernetes.calls import ApiCalls
from syringe.runtime.kubernetes.creating import raw_body
from syringe.runtime.kubernetes.observing import observe_namespace


async def list_live_lessons(
    api: client.ApiClient, calls: ApiCalls, selector: str, addresses: Addresses
) -> list[LiveLessonRecord]:
    """The listed Services are remembered in ``addresses`` before the pods are observed, which need them."""
    core = client.CoreV1Api(api)
    responses = await asyncio.gather(
        calls("list", raw_body, core.list_namespace, label_selector=selector),
        calls("list", raw_body, core.list_pod_for_all_namespaces, label_selector=selector),
        calls("list", raw_body, core.list_service_for_all_namespaces, label_selector=selector),
    )
    namespaces, pods, services = (json.loads(r).get("items") or [] for r in responses)
    for service in services:
        addresses.remember(service)
    by_namespace: dict[str, list[EndpointObservation]] = {}
    for pod in pods:
        observation = addresses.observe(pod)
        if observation is not None:
            by_namespace.setdefault(observation.namespace, []).append(observation)
    return [observe_namespace(ns, by_namespace.get(ns["metadata"]["name"], [])) for ns in namespaces]
