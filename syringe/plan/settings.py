"""The settings the plan depends on. A plain model: the plan never reads the environment."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class PlanSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    instance: str = Field(
        default="syringe",
        pattern=r"^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$",
        description="This Syringe installation's id: prefixes namespaces, labels every object.",
    )
    image_registry: str = Field(default="antidotelabs", description="Registry and path prefix of endpoint images.")
    image_tag: str = "latest"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    lesson_mount_path: str = Field(default="/antidote", description="Where pods see the lesson's files.")
    untrusted_runtime_class: str | None = Field(
        default=None, description="runtimeClassName for images of flavor untrusted (for example kata)."
    )
    kvm_resource: str | None = Field(
        default=None, description="Extended resource that grants /dev/kvm to QEMU pods (devices.kubevirt.io/kvm)."
    )
    # Privilege is the operator's to grant, never a metafile's to take: a curriculum comes from pull requests.
    privileged_images: list[str] | None = Field(
        default=None,
        description="Image slugs whose pods may run privileged (each must also be a trusted vm); unset: none may.",
    )
    image_capabilities: dict[str, list[Annotated[str, Field(pattern=r"^[A-Z][A-Z_]{1,31}$")]]] = Field(
        default_factory=dict,
        description="Linux capabilities to add, beyond NET_ADMIN, to the containers of trusted container images, by "
        "image slug (FRR's daemons refuse to start without SYS_ADMIN): a narrower grant than privileged.",
    )
    kvm_images: list[str] | None = Field(
        default=None,
        description="VM image slugs that get kvm_resource; unset: every VM image does, when kvm_resource is set.",
    )
    syringe_namespace: str = Field(
        default="syringe", description="The namespace Syringe runs in: it may reach lessons."
    )
    service_account: str = Field(default="syringe", description="Syringe's ServiceAccount in syringe_namespace.")
    lesson_cluster_role: str = Field(
        default="syringe-lesson",
        description="The ClusterRole bound in each lesson namespace: what Syringe may do there, and only there.",
    )
    subnet_pool: str = Field(default="10.254.0.0/16", description="Where connections without a subnet get one.")
    subnet_prefix: int = Field(default=24, ge=8, le=30)
    vm_overhead_memory: str = Field(default="256Mi", description="Pod memory on top of a VM's guest memory.")
    vm_cpu_request: str = Field(
        default="1",
        description="CPU a VM's pod requests per guest CPU (a Kubernetes quantity). A lab cluster that overcommits "
        "its nodes sets less, e.g. 250m; the limit stays twice the request.",
    )
    expose: list[Literal["ssh", "netconf", "http"]] = Field(
        default_factory=list,
        description="Presentation types to expose outside the cluster, through one extra Service per endpoint.",
    )
    expose_service_type: Literal["NodePort", "LoadBalancer"] = "NodePort"
    configurator_image: str = Field(
        default="syringe/syringe:latest", description="The image configuration Jobs run (syringe configure)."
    )
    job_timeout_seconds: int = Field(default=300, ge=10, description="A configuration Job's deadline.")
    job_backoff_limit: int = Field(default=1, ge=0, description="Retries of a failed configuration Job.")
    napalm_mode: Literal["merge", "replace"] = "merge"
    job_cpu: str = "250m"
    job_memory: str = "256Mi"
    jobs_per_endpoint: int = Field(default=2, ge=1, description="Headroom for configuration and check Jobs.")
