"""Start-up checks: is the API server there, is Multus installed, may Syringe do its job?"""

from __future__ import annotations

from kubernetes import client

from syringe.runtime.kubernetes.calls import ApiCalls, describe
from syringe.runtime.kubernetes.creating import NAD_GROUP, NAD_VERSION

# What Syringe needs cluster-wide, as (verb, group, resource, name). Everything else it does happens inside
# lesson namespaces, through the lesson ClusterRole that each lesson's RoleBinding grants it there.
REQUIRED_ACCESS: list[tuple[str, str, str, str]] = [
    *[(verb, "", "namespaces", "") for verb in ("create", "list", "watch")],
    *[(verb, "", resource, "") for resource in ("pods", "services") for verb in ("list", "watch")],
    *[(verb, "batch", "jobs", "") for verb in ("list", "watch")],
    ("create", "rbac.authorization.k8s.io", "rolebindings", ""),
]


HOME_ACCESS: list[tuple[str, str, str]] = [
    *[(verb, "coordination.k8s.io", "leases") for verb in ("get", "create", "update")],
    *[(verb, "", "secrets") for verb in ("get", "list", "watch", "create", "update", "delete")],
]


async def run_checks(
    api: client.ApiClient, calls: ApiCalls, lesson_role: str = "syringe-lesson", home: str = "syringe"
) -> list[str]:
    try:
        await calls("get", client.VersionApi(api).get_code, _request_timeout=10)
    except Exception as exc:  # noqa: BLE001 - any failure means the same to an operator
        return [f"the Kubernetes API server at {api.configuration.host} is unreachable: {describe(exc)}"]

    problems = []
    groups = await calls("get", client.ApisApi(api).get_api_versions, _request_timeout=10)
    nad = next((g for g in groups.groups if g.name == NAD_GROUP), None)
    if nad is None or all(v.version != NAD_VERSION for v in nad.versions):
        problems.append(
            f"Multus is not installed: the API server does not serve {NAD_GROUP}/{NAD_VERSION} "
            "NetworkAttachmentDefinitions, which lesson connections need. Install Multus, or apply "
            "manifests/prerequisites/network-attachment-definition-crd.yaml (docs/OPERATIONS.md)."
        )

    authz = client.AuthorizationV1Api(api)
    denied = []
    # Binding the lesson role needs either every permission in it or the bind verb on it.
    wanted = [
        *[(verb, group, resource, name, "") for verb, group, resource, name in REQUIRED_ACCESS],
        ("bind", "rbac.authorization.k8s.io", "clusterroles", lesson_role, ""),
        *[(verb, group, resource, "", home) for verb, group, resource in HOME_ACCESS],
    ]
    for verb, group, resource, name, namespace in wanted:
        attributes = {"verb": verb, "group": group, "resource": resource}
        attributes.update({"name": name} if name else {})
        attributes.update({"namespace": namespace} if namespace else {})
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        answer = await calls("create", authz.create_self_subject_access_review, review, _request_timeout=10)
        if not answer.status.allowed:
            where = f" in namespace {namespace}" if namespace else ""
            denied.append(f"{verb} {resource}{'.' + group if group else ''}{' ' + name if name else ''}{where}")
    if denied:
        problems.append(
            "the service account may not " + ", ".join(denied) + " (apply manifests/ RBAC, see docs/OPERATIONS.md)"
        )
    return problems
