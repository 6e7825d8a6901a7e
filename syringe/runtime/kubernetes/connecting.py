"""Connecting: the official client's ApiClient, from a kubeconfig file or from the pod's service account."""

from __future__ import annotations

from kubernetes import client, config


def api_client_from(kubeconfig: str | None, pool_size: int = 16) -> client.ApiClient:
    """A client from a kubeconfig file, or from the pod's service account when there is none.

    ``pool_size`` bounds the HTTP connections: the call pool's threads plus the long-lived watches.
    """
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)
