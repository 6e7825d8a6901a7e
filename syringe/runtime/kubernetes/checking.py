"""Start-up checks: is the API server there, is Multus installed, may Syringe do its job?"""

from __future__ import annotations

from kubernetes import client

from syringe.runtime.kubernetes.calls import ApiCalls, describe
from syringe.runtime.kubernetes.creating import NAD_GROUP, NAD_PLURAL, NAD_VERSION

# (verb, group, resource, namespaced) that a live lesson needs.
REQUIRED_ACCESS: list[tuple[str, str, str]] = [
    *[(verb, "", "namespaces") for verb in ("create", "delete", "get", "list", "watch", "patch")],
    *[(verb, "", "pods") for verb in ("create", "list", "watch")],
    *[("create", "", resource) for resource in ("services", "configmaps", "secrets", "resourcequotas", "limitranges")],
    ("list", "", "services"),
    ("create", "networking.k8s.io", "networkpolicies"),
    ("create", NAD_GROUP, NAD_PLURAL),
    *[(verb, "batch", "jobs") for verb in ("create", "list", "watch", "delete")],
]


async def run_checks(api: client.ApiClient, calls: ApiCalls) -> list[str]:
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
    for verb, group, resource in REQUIRED_ACCESS:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "group": group, "resource": resource}},
        }
        answer = await calls("create", authz.create_self_subject_access_review, review, _request_timeout=10)
        if not answer.status.allowed:
            denied.append(f"{verb} {resource}{'.' + group if group else ''}")
    if denied:
        problems.append(
            "the service account may not " + ", ".join(denied) + " (apply manifests/ RBAC, see docs/OPERATIONS.md)"
        )
    return problems
