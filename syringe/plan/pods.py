"""An endpoint's Pod: its ports, the resources it requests, the security context of its image's flavor,
and the spec that puts them together."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from syringe.curriculum.models import Endpoint, Image, VirtualMachine
from syringe.plan import labels, podenv
from syringe.plan.credentials import CREDENTIALS_SECRET, login_password_key
from syringe.plan.objects import K8sObject, metadata
from syringe.plan.quantity import format_mebibytes, format_millicores, mebibytes, millicores
from syringe.plan.settings import PlanSettings
from syringe.plan.volume import TOPOLOGY_FILE

DEFAULT_RESOURCES = {"cpu": "250m", "memory": "256Mi"}

# A QEMU wrapper's pod is ready while its launcher keeps the ready marker next to its health file (the
# default /run/syringe/health). A file test: a probe every second must cost nothing on a busy node, where a
# Python start (`syringe launch --health`, for people) can take longer than the probe's timeout. Every
# second, the shortest period there is: until the pod is Ready, Syringe does not probe its presentations,
# so half the period is added to every launch on average.
VM_READINESS: dict[str, Any] = {
    "exec": {"command": ["test", "-e", f"/run/syringe/{podenv.READY_MARKER}"]},
    "periodSeconds": 1,
    "timeoutSeconds": 5,
    "failureThreshold": 2,
}


def port_name(kind: str, port: int) -> str:
    """An IANA service name (at most 15 characters) that is unique per port."""
    return f"{kind}-{port}"


def endpoint_ports(endpoint: Endpoint) -> list[tuple[str, int]]:
    kinds: dict[int, str] = {}
    for presentation in endpoint.presentations:
        kinds.setdefault(presentation.port, presentation.type)
    return [(port_name(kinds.get(port, "tcp"), port), port) for port in endpoint.ports()]


def pod_resources(image: Image | None, settings: PlanSettings) -> tuple[int, int]:
    """(millicores, MiB) requested by an endpoint's pod."""
    if image is not None and image.kind == "vm" and image.vm is not None:
        cpu = image.vm.cpus * millicores(settings.vm_cpu_request)
        memory = mebibytes(image.vm.memory) + mebibytes(settings.vm_overhead_memory)
        if image.resources is not None:
            cpu, memory = max(cpu, millicores(image.resources.cpu)), max(memory, mebibytes(image.resources.memory))
        return cpu, memory
    resources = image.resources if image is not None and image.resources is not None else None
    cpu_request = resources.cpu if resources else DEFAULT_RESOURCES["cpu"]
    memory_request = resources.memory if resources else DEFAULT_RESOURCES["memory"]
    return millicores(cpu_request), mebibytes(memory_request)


def runs_privileged(image: Image | None, settings: PlanSettings) -> bool:
    """A pod runs privileged only when its image is a trusted VM (QEMU wants /dev/net/tun and bridges) and
    the operator lists it in privileged_images: the metafile may ask, only the operator grants."""
    if image is None or image.kind != "vm" or image.flavor != "trusted":
        return False
    return settings.privileged_images is not None and image.slug in settings.privileged_images


def gets_kvm(image: Image | None, settings: PlanSettings) -> bool:
    """/dev/kvm (the kvm_resource) goes to VM images; with a kvm_images list, only to those it names.
    Setting kvm_resource is the operator's opt-in, so without a list every VM image gets it."""
    if image is None or image.kind != "vm" or not settings.kvm_resource:
        return False
    return settings.kvm_images is None or image.slug in settings.kvm_images


def _security(image: Image | None, settings: PlanSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(container securityContext, extra pod spec fields) for the image's flavor and the operator's grants."""
    flavor = image.flavor if image is not None else "untrusted"
    pod: dict[str, Any] = {}
    if runs_privileged(image, settings):
        return {"privileged": True}, pod
    if flavor == "untrusted" and settings.untrusted_runtime_class:
        pod["runtimeClassName"] = settings.untrusted_runtime_class
    granted = settings.image_capabilities.get(image.slug, []) if image is not None and flavor == "trusted" else []
    context: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_ADMIN", *sorted(set(granted) - {"NET_ADMIN"})]},
    }
    return context, pod


def _vm_boot(vm: VirtualMachine, image: Image, endpoint: str, addresses: list[str]) -> list[dict[str, Any]]:
    """How the wrapper boots the VM, and the identity it hands the guest (hostname, an address per data NIC,
    the learner's login from the credentials Secret, routing between its NICs): a kernel reads it on its
    command line, a disk prepared by `syringe image prepare` in the fw_cfg file the launcher adds."""
    env: list[dict[str, Any]]
    if vm.disk:
        env = [{"name": podenv.VM_DISK, "value": vm.disk}]
        if image.ready_line():
            env.append({"name": podenv.VM_READY_LINE, "value": image.ready_line()})
    else:
        env = [{"name": podenv.VM_KERNEL, "value": vm.kernel}, {"name": podenv.VM_INITRD, "value": vm.initrd}]
    env.append({"name": podenv.VM_ADDRESSES, "value": ",".join(addresses)})
    if vm.append:
        env.append({"name": podenv.VM_APPEND, "value": vm.append})
    if image.ssh_user:
        env += [
            {"name": podenv.VM_USER, "value": image.ssh_user},
            {
                "name": podenv.VM_PASSWORD,
                "valueFrom": {"secretKeyRef": {"name": CREDENTIALS_SECRET, "key": login_password_key(endpoint)}},
            },
        ]
    if image.enable_forwarding:
        env.append({"name": podenv.VM_FORWARD, "value": "1"})
    return env


def endpoint_pod(
    namespace: str,
    common: Mapping[str, str],
    endpoint: Endpoint,
    image: Image | None,
    networks: list[dict[str, Any]],
    volume_sources: list[dict[str, Any]],
    resources: tuple[int, int],
    settings: PlanSettings,
    livelesson: str,
    addresses: list[str] | None = None,
) -> K8sObject:
    """The Pod of ``endpoint``: attached to ``networks`` (``addresses`` are its planned addresses on them, in
    the same order), the lesson files mounted, ``resources`` requested."""
    addresses = addresses or []
    cpu, memory = resources
    limits: dict[str, str] = {"cpu": format_millicores(cpu * 2), "memory": format_mebibytes(memory * 2)}
    requests: dict[str, str] = {"cpu": format_millicores(cpu), "memory": format_mebibytes(memory)}
    if gets_kvm(image, settings) and settings.kvm_resource:
        limits[settings.kvm_resource] = "1"
        requests[settings.kvm_resource] = "1"
    env = [
        {"name": podenv.ENDPOINT, "value": endpoint.name},
        {"name": podenv.LESSON_DIR, "value": settings.lesson_mount_path},
        {"name": podenv.TOPOLOGY, "value": f"{settings.lesson_mount_path}/{TOPOLOGY_FILE}"},
    ]
    if image is not None and image.vm is not None:
        env += [
            {"name": podenv.VM_MEMORY_MIB, "value": str(mebibytes(image.vm.memory))},
            {"name": podenv.VM_CPUS, "value": str(image.vm.cpus)},
            # The wrapper's launcher waits for this many data interfaces (eth1..N) before it boots the VM.
            {"name": podenv.VM_INTERFACES, "value": str(len(networks))},
        ]
        env += _vm_boot(image.vm, image, endpoint.name, addresses)
        if endpoint.additional_ports:
            env.append({"name": podenv.VM_PORTS, "value": podenv.format_vm_ports(endpoint.additional_ports)})
    security, pod_extra = _security(image, settings)
    meta = metadata(endpoint.name, namespace, common, **{labels.ENDPOINT: endpoint.name})
    if networks:
        meta["annotations"] = {labels.NETWORKS: json.dumps(networks)}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "hostname": endpoint.name,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 5,
            **pod_extra,
            "affinity": {
                # Bridges are node-local: every pod of a live lesson must land on the same node.
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": {labels.LIVELESSON: livelesson}},
                            "topologyKey": "kubernetes.io/hostname",
                        }
                    ]
                }
            },
            "containers": [
                {
                    "name": "endpoint",
                    "image": f"{settings.image_registry}/{endpoint.image}:{settings.image_tag}",
                    "imagePullPolicy": settings.image_pull_policy,
                    "ports": [
                        {"name": name, "containerPort": port, "protocol": "TCP"}
                        for name, port in endpoint_ports(endpoint)
                    ],
                    "env": env,
                    # A container that fails says why in its status: the end of its log (the wrapper's
                    # launcher ends with one line naming the setting or step).
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "resources": {"requests": requests, "limits": limits},
                    "securityContext": security,
                    **({"readinessProbe": VM_READINESS} if image is not None and image.kind == "vm" else {}),
                    "volumeMounts": [
                        {"name": "lesson-files", "mountPath": settings.lesson_mount_path, "readOnly": True}
                    ],
                }
            ],
            "volumes": [{"name": "lesson-files", "projected": {"sources": volume_sources}}],
        },
    }
