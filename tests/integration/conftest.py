"""Integration fixtures: a real Kubernetes API server, named by SYRINGE_TEST_KUBECONFIG.

scripts/test.sh starts the project's local control plane and sets the variable; point it at any other
cluster (kind, k3d, a real one) to run the same tests there. Without it the tests fail loudly: a missing
part is never a skip.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException

REPO = Path(__file__).resolve().parents[2]
NAD_CRD = REPO / "manifests/prerequisites/network-attachment-definition-crd.yaml"


@pytest.fixture(scope="session")
def kube_api() -> Iterator[client.ApiClient]:
    path = os.environ.get("SYRINGE_TEST_KUBECONFIG")
    if not path or not Path(path).is_file():
        pytest.fail(
            "integration tests need a Kubernetes API server: run scripts/test.sh (it starts one) "
            "or set SYRINGE_TEST_KUBECONFIG to a kubeconfig",
            pytrace=False,
        )
    api = config.new_client_from_config(config_file=path)
    try:
        client.VersionApi(api).get_code()
    except Exception as exc:
        pytest.fail(f"the API server in {path} does not answer: {exc}", pytrace=False)
    yield api
    api.close()


@pytest.fixture(scope="session")
def kube_dynamic(kube_api: client.ApiClient) -> dynamic.DynamicClient:
    dyn = dynamic.DynamicClient(kube_api)
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    body = yaml.safe_load(NAD_CRD.read_text())
    try:
        crds.get(name=body["metadata"]["name"])
    except ApiException as exc:
        if exc.status != 404:
            raise
        crds.create(body=body)
        # The dynamic client's discovery cache must learn the new group.
        dyn = dynamic.DynamicClient(kube_api)
    for _ in range(100):
        try:
            dyn.resources.get(api_version="k8s.cni.cncf.io/v1", kind="NetworkAttachmentDefinition")
            break
        except Exception:
            time.sleep(0.1)
            dyn = dynamic.DynamicClient(kube_api)
    return dyn
