"""The Secret that holds the configurators' credentials for each endpoint."""

from __future__ import annotations

from collections.abc import Mapping

from syringe.curriculum.models import Image, Lesson
from syringe.plan.objects import K8sObject, metadata

CREDENTIALS_SECRET = "lesson-credentials"


def login_password_key(endpoint: str) -> str:
    """The key of the learner's password for a VM that the wrapper's launcher gives its login (kernel boots)."""
    return f"{endpoint}.login-password"


def credentials_secret(
    lesson: Lesson, images: Mapping[str, Image], namespace: str, common: Mapping[str, str]
) -> K8sObject:
    """The configurators' credentials for each endpoint, from its image (configUser, else sshUser). Jobs
    read them from here, never from literals in their spec."""
    data: dict[str, str] = {}
    for endpoint in lesson.endpoints:
        image = images.get(endpoint.image)
        if image is None:
            continue
        data[f"{endpoint.name}.username"] = image.config_user or image.ssh_user
        data[f"{endpoint.name}.password"] = image.config_password or image.ssh_password
        if image.vm is not None and image.ssh_user:  # the wrapper hands the guest its login (pods._vm_boot)
            data[login_password_key(endpoint.name)] = image.ssh_password
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(CREDENTIALS_SECRET, namespace, common),
        "type": "Opaque",
        "stringData": data,
    }
