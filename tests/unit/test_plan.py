"""The plan: addressing, naming, security and the shape of every object."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syringe.curriculum import load_curriculum
from syringe.curriculum.files import read_lesson_files
from syringe.plan import LiveLessonIdentity, PlanSettings, build_plan
from syringe.plan.files import CHUNK_BYTES, pack_files
from syringe.plan.networks import bridge_name
from tests.corpus import write_curriculum

WHO = LiveLessonIdentity(id="ll1", session="s1", created_at=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture
def tree(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_curriculum(write_curriculum(tmp_path))


def _plan(tree, settings: PlanSettings | None = None, who: LiveLessonIdentity = WHO, stage: int = 0):  # type: ignore[no-untyped-def]
    source = tree.lessons["triangle"]
    return build_plan(source.lesson, tree.images, stage, who, settings or PlanSettings(), read_lesson_files(source))


def _by_kind(plan, kind: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    return [o for o in plan.objects if o["kind"] == kind]


def test_objects_come_in_dependency_order(tree) -> None:  # type: ignore[no-untyped-def]
    plan = _plan(tree)
    kinds = [[o["kind"] for o in wave] for wave in plan.waves]
    assert kinds[0] == ["Namespace"]
    assert set(kinds[2]) == {
        "Secret",
        "NetworkPolicy",
        "ResourceQuota",
        "LimitRange",
        "NetworkAttachmentDefinition",
        "ConfigMap",
        "Service",
    }
    assert kinds[1] == ["RoleBinding"]
    assert kinds[3] == ["Pod"] * 3
    assert plan.namespace == "syringe-ll1"
    assert all(o["metadata"].get("namespace") == "syringe-ll1" for o in plan.objects[1:])


def test_every_object_carries_the_identity_labels(tree) -> None:  # type: ignore[no-untyped-def]
    for obj in _plan(tree).objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "syringe"
        assert labels["syringe.io/instance"] == "syringe"
        assert labels["syringe.io/livelesson"] == "ll1"
        assert labels["syringe.io/session"] == "s1"
        assert labels["syringe.io/lesson"] == "triangle"


def test_namespace_state_annotations(tree) -> None:  # type: ignore[no-untyped-def]
    expiry = datetime(2026, 1, 1, 1, tzinfo=UTC)
    who = LiveLessonIdentity(id="ll1", session="s1", created_at=WHO.created_at, expires_at=expiry)
    annotations = _plan(tree, who=who, stage=1).objects[0]["metadata"]["annotations"]
    assert annotations["syringe.io/stage"] == "1"
    assert annotations["syringe.io/status"] == "INITIALIZED"
    assert annotations["syringe.io/expires-at"] == expiry.isoformat()


def test_addresses_are_deterministic_and_explicit_subnets_win(tree) -> None:  # type: ignore[no-untyped-def]
    links = _plan(tree).links
    assert (links[0].subnet, links[0].a.address, links[0].b.address) == ("10.12.0.0/24", "10.12.0.1/24", "10.12.0.2/24")
    assert (links[1].subnet, links[1].a.address, links[1].b.address) == (
        "10.254.0.0/24",
        "10.254.0.1/24",
        "10.254.0.2/24",
    )
    assert _plan(tree).links == links


def test_pool_skips_subnets_the_lesson_names(tree) -> None:  # type: ignore[no-untyped-def]
    links = _plan(tree, PlanSettings(subnet_pool="10.12.0.0/16")).links
    assert links[1].subnet == "10.12.1.0/24"


def test_interface_names_follow_image_then_kind_defaults(tree) -> None:  # type: ignore[no-untyped-def]
    links = _plan(tree).links
    # r1 is a router VM with networkInterfaces [ge-0, ge-1]; h1 is a container without a list.
    assert (links[0].a.endpoint, links[0].a.interface) == ("r1", "ge-0")
    assert (links[1].a.endpoint, links[1].a.interface) == ("r1", "ge-1")
    assert (links[1].b.endpoint, links[1].b.interface) == ("h1", "net1")


def test_nads_are_bridges_with_static_ipam_from_the_selection(tree) -> None:  # type: ignore[no-untyped-def]
    nads = _by_kind(_plan(tree), "NetworkAttachmentDefinition")
    assert [n["metadata"]["name"] for n in nads] == ["conn0-r1-r2", "conn1-r1-h1"]
    configs = [json.loads(n["spec"]["config"]) for n in nads]
    assert all(c["type"] == "bridge" and len(c["bridge"]) <= 15 for c in configs)
    assert len({c["bridge"] for c in configs}) == 2
    # The address comes from each pod's network selection (ips), which Multus passes as runtimeConfig.
    assert configs[0]["ipam"] == {"type": "static"}
    assert configs[0]["capabilities"] == {"ips": True}


def test_container_endpoints_get_their_planned_address_in_the_selection(tree) -> None:  # type: ignore[no-untyped-def]
    plan = _plan(tree)
    pods = {p["metadata"]["name"]: p for p in _by_kind(plan, "Pod")}
    networks = json.loads(pods["h1"]["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"])
    assert networks == [{"name": "conn1-r1-h1", "interface": "net1", "ips": [plan.links[1].b.address]}]
    assert pods["h1"]["spec"]["hostname"] == "h1"


def test_bridge_names_differ_between_live_lessons() -> None:
    names = {bridge_name(f"syringe-{i}", 0) for i in range(500)}
    assert len(names) == 500
    assert all(len(n) <= 15 for n in names)


def test_pods_reference_networks_with_explicit_interfaces_and_affinity(tree) -> None:  # type: ignore[no-untyped-def]
    pods = {p["metadata"]["name"]: p for p in _by_kind(_plan(tree), "Pod")}
    networks = json.loads(pods["r1"]["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"])
    links = _plan(tree).links
    assert networks == [
        {"name": "conn0-r1-r2", "interface": "ge-0", "ips": [links[0].a.address]},
        {"name": "conn1-r1-h1", "interface": "ge-1", "ips": [links[1].a.address]},
    ]
    affinity = pods["h1"]["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert affinity == {
        "labelSelector": {"matchLabels": {"syringe.io/livelesson": "ll1"}},
        "topologyKey": "kubernetes.io/hostname",
    }


def test_ports_are_presentations_and_additional_ports(tree) -> None:  # type: ignore[no-untyped-def]
    plan = _plan(tree)
    pods = {p["metadata"]["name"]: p for p in _by_kind(plan, "Pod")}
    services = {s["metadata"]["name"]: s for s in _by_kind(plan, "Service")}
    r2_ports = pods["r2"]["spec"]["containers"][0]["ports"]
    assert [(p["name"], p["containerPort"]) for p in r2_ports] == [("ssh-22", 22), ("netconf-830", 830)]
    assert [(p["name"], p["port"]) for p in services["h1"]["spec"]["ports"]] == [("tcp-8080", 8080)]
    assert services["h1"]["spec"]["type"] == "ClusterIP"
    assert services["h1"]["spec"]["selector"] == {"syringe.io/livelesson": "ll1", "syringe.io/endpoint": "h1"}


UNPRIVILEGED = {"allowPrivilegeEscalation": False, "capabilities": {"add": ["NET_ADMIN"]}}
KVM = "devices.kubevirt.io/kvm"


def test_security_context_follows_flavor_and_the_operators_grants(tree) -> None:  # type: ignore[no-untyped-def]
    settings = PlanSettings(untrusted_runtime_class="kata", kvm_resource=KVM, privileged_images=["router"])
    pods = {p["metadata"]["name"]: p for p in _by_kind(_plan(tree, settings), "Pod")}
    router, host = pods["r1"]["spec"], pods["h1"]["spec"]
    assert router["containers"][0]["securityContext"] == {"privileged": True}
    assert router["containers"][0]["resources"]["limits"][KVM] == "1"
    assert "runtimeClassName" not in router
    assert host["runtimeClassName"] == "kata"
    assert host["containers"][0]["securityContext"] == UNPRIVILEGED
    assert KVM not in host["containers"][0]["resources"]["limits"]


@pytest.mark.parametrize("privileged_images", [None, [], ["linux"]])
def test_a_trusted_vm_the_operator_does_not_list_runs_unprivileged(tree, privileged_images) -> None:  # type: ignore[no-untyped-def]
    """The metafile's flavor: trusted asks; only SYRINGE_PLAN__PRIVILEGED_IMAGES grants."""
    settings = PlanSettings(privileged_images=privileged_images)
    pods = {p["metadata"]["name"]: p for p in _by_kind(_plan(tree, settings), "Pod")}
    assert pods["r1"]["spec"]["containers"][0]["securityContext"] == UNPRIVILEGED


def test_listing_an_image_never_makes_a_container_or_an_untrusted_vm_privileged(tree) -> None:  # type: ignore[no-untyped-def]
    image = tree.images["router"]
    tree.images["router"] = image.model_copy(update={"flavor": "untrusted"})
    settings = PlanSettings(privileged_images=["router", "linux"])
    pods = {p["metadata"]["name"]: p for p in _by_kind(_plan(tree, settings), "Pod")}
    assert pods["r1"]["spec"]["containers"][0]["securityContext"] == UNPRIVILEGED
    assert pods["h1"]["spec"]["containers"][0]["securityContext"] == UNPRIVILEGED


@pytest.mark.parametrize(("kvm_images", "gets_kvm"), [(None, True), (["router"], True), ([], False), (["x"], False)])
def test_kvm_goes_to_the_vm_images_the_operator_lists(tree, kvm_images, gets_kvm) -> None:  # type: ignore[no-untyped-def]
    settings = PlanSettings(kvm_resource=KVM, kvm_images=kvm_images)
    pods = {p["metadata"]["name"]: p for p in _by_kind(_plan(tree, settings), "Pod")}
    resources = pods["r1"]["spec"]["containers"][0]["resources"]
    assert (KVM in resources["limits"] and KVM in resources["requests"]) is gets_kvm
    assert KVM not in pods["h1"]["spec"]["containers"][0]["resources"]["limits"]
    without = {p["metadata"]["name"]: p for p in _by_kind(_plan(tree, PlanSettings(kvm_images=["router"])), "Pod")}
    assert KVM not in without["r1"]["spec"]["containers"][0]["resources"]["limits"]


def test_vm_pods_request_guest_memory_plus_overhead(tree) -> None:  # type: ignore[no-untyped-def]
    pods = {p["metadata"]["name"]: p for p in _by_kind(_plan(tree), "Pod")}
    requests = pods["r1"]["spec"]["containers"][0]["resources"]["requests"]
    assert requests == {"cpu": "1", "memory": "768Mi"}
    env = {e["name"]: e["value"] for e in pods["r1"]["spec"]["containers"][0]["env"]}
    assert env["SYRINGE_VM_MEMORY_MIB"] == "512"
    assert env["SYRINGE_VM_DISK"] == "/images/router.qcow2"


def test_lesson_files_and_topology_reach_pods_through_config_maps(tree) -> None:  # type: ignore[no-untyped-def]
    plan = _plan(tree)
    config_maps = _by_kind(plan, "ConfigMap")
    items = {
        item["path"]: cm["data"][item["key"]]
        for cm in config_maps
        for item in next(
            s["configMap"]["items"]
            for s in _by_kind(plan, "Pod")[0]["spec"]["volumes"][0]["projected"]["sources"]
            if s["configMap"]["name"] == cm["metadata"]["name"]
        )
    }
    assert items["stage0/configs/r1.py"] == "# stage0/configs/r1.py\n"
    topology = json.loads(items[".syringe/topology.json"])
    assert topology["endpoints"]["h1"]["interfaces"] == [
        {"name": "net1", "address": "10.254.0.2/24", "peer": "r1", "connection": 1}
    ]
    mount = _by_kind(plan, "Pod")[0]["spec"]["containers"][0]["volumeMounts"][0]
    assert mount == {"name": "lesson-files", "mountPath": "/antidote", "readOnly": True}
    assert all("hostPath" not in v for p in _by_kind(plan, "Pod") for v in p["spec"]["volumes"])


def test_large_lessons_are_split_over_config_maps() -> None:
    files = {f"big{i}.bin": bytes([0xFF - i]) * (CHUNK_BYTES // 2) for i in range(5)}
    files["text.md"] = b"hello"
    chunks = pack_files(files, "lesson-files")
    assert len(chunks) == 3
    assert all(c.size <= CHUNK_BYTES for c in chunks)
    assert sum(len(c.items) for c in chunks) == 6
    assert any("big0.bin" in key for c in chunks for key in c.binary_data)


def test_quota_covers_pods_and_configuration_jobs(tree) -> None:  # type: ignore[no-untyped-def]
    quota = _by_kind(_plan(tree), "ResourceQuota")[0]["spec"]["hard"]
    assert quota["pods"] == "9"  # 3 endpoints + 2 jobs each


def test_unknown_stage_is_refused(tree) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="stages 0-1, not 5"):
        _plan(tree, stage=5)


def test_exposed_presentations_get_an_external_service_and_quota(tree) -> None:  # type: ignore[no-untyped-def]
    plan = _plan(tree, PlanSettings(expose=["netconf"], expose_service_type="NodePort"))
    services = {s["metadata"]["name"]: s for s in _by_kind(plan, "Service")}
    external = services["r2-external"]
    assert external["spec"]["type"] == "NodePort"
    assert [(p["name"], p["port"]) for p in external["spec"]["ports"]] == [("netconf-830", 830)]
    assert external["metadata"]["labels"]["syringe.io/external"] == "true"
    assert "r1-external" not in services  # r1 has no netconf presentation
    hard = _by_kind(plan, "ResourceQuota")[0]["spec"]["hard"]
    assert (hard["services"], hard["services.nodeports"]) == ("4", "1")
    assert _by_kind(_plan(tree), "ResourceQuota")[0]["spec"]["hard"]["services.nodeports"] == "0"


def test_configuration_jobs(tree) -> None:  # type: ignore[no-untyped-def]
    import kubernetes_validate

    from syringe.plan.jobs import configuration_jobs

    plan = _plan(tree)
    lesson = tree.lessons["triangle"].lesson
    jobs = configuration_jobs(lesson, plan, 1, "3", PlanSettings(configurator_image="reg/syringe:1"))
    assert [j["metadata"]["name"] for j in jobs] == ["config-s1-r3-r1", "config-s1-r3-r2"]  # h1 has no type
    job = jobs[1]
    kubernetes_validate.validate(job, "1.29", strict=True)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "reg/syringe:1"
    assert container["command"][:8] == ["syringe", "configure", "--type", "napalm", "--endpoint", "r2", "--stage", "1"]
    env = {e["name"]: e for e in container["env"]}
    assert env["SYRINGE_TARGET_HOST"]["value"] == "r2"
    assert env["SYRINGE_TARGET_PORT"]["value"] == "22"
    assert env["SYRINGE_TARGET_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "lesson-credentials",
        "key": "r2.password",
    }
    assert all("value" not in e for e in container["env"] if "PASSWORD" in e["name"] or "USER" in e["name"])
    assert container["securityContext"]["runAsNonRoot"] and not container["securityContext"]["allowPrivilegeEscalation"]
    spec = job["spec"]
    assert spec["backoffLimit"] == 1 and spec["activeDeadlineSeconds"] == 300
    assert spec["template"]["spec"]["volumes"][0]["projected"]["sources"] == plan.volume_sources
    assert job["metadata"]["labels"]["syringe.io/purpose"] == "configuration"
    assert "SYRINGE_DONE_TOKEN" not in env
    # No Service of the lesson selects a Job's pod: it would get a share of the endpoint's traffic.
    for each in jobs:
        pod_labels = each["spec"]["template"]["metadata"]["labels"]
        assert pod_labels["syringe.io/purpose"] == "configuration" and "syringe.io/endpoint" not in pod_labels
        for service in _by_kind(plan, "Service"):
            selector = service["spec"]["selector"]
            assert not selector.items() <= pod_labels.items(), (service["metadata"]["name"], each["metadata"]["name"])
    told = configuration_jobs(lesson, plan, 1, "3", PlanSettings(), done_token="t0ken")[1]
    told_env = {e["name"]: e.get("value") for e in told["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert told_env["SYRINGE_DONE_TOKEN"] == "t0ken"

    secret = _by_kind(plan, "Secret")[0]
    assert secret["metadata"]["name"] == "lesson-credentials"
    assert secret["stringData"]["h1.username"] == "u" and secret["stringData"]["h1.password"] == "p"


def test_the_operator_grants_capabilities_to_trusted_container_images_only(tree) -> None:  # type: ignore[no-untyped-def]
    """FRR's daemons need SYS_ADMIN: SYRINGE_PLAN__IMAGE_CAPABILITIES grants it to the images it names, and
    only where the metafile asks (flavor trusted); never privileged."""
    settings = PlanSettings(image_capabilities={"linux": ["SYS_ADMIN", "NET_ADMIN"]})
    untrusted = {p["metadata"]["name"]: p for p in _by_kind(_plan(tree, settings), "Pod")}
    assert untrusted["h1"]["spec"]["containers"][0]["securityContext"] == UNPRIVILEGED
    tree.images["linux"] = tree.images["linux"].model_copy(update={"flavor": "trusted"})
    trusted = {p["metadata"]["name"]: p for p in _by_kind(_plan(tree, settings), "Pod")}
    context = trusted["h1"]["spec"]["containers"][0]["securityContext"]
    assert context == {"allowPrivilegeEscalation": False, "capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN"]}}
    with pytest.raises(ValueError, match="pattern"):
        PlanSettings(image_capabilities={"linux": ["all; rm"]})
