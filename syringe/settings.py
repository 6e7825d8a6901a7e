"""Service settings, read from the environment with the prefix SYRINGE_ (nested with __)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from syringe.plan.settings import PlanSettings


class KubernetesSettings(BaseModel):
    """What only the Kubernetes runtime reads: how it reaches endpoints, and its pool for blocking calls."""

    address_mode: Literal["service-dns", "cluster-ip", "pod-ip"] = Field(
        default="service-dns",
        description="How Syringe reaches endpoints: Service DNS names (in a cluster), ClusterIPs, or pod IPs "
        "(out of cluster, and in the tests).",
    )
    cluster_domain: str = "cluster.local"
    api_threads: int = Field(default=8, ge=1, le=64, description="Bounded pool for blocking Kubernetes calls.")
    external_host: str = Field(
        default="", description="The host learners use for presentations exposed by the plan's expose setting."
    )


class LifecycleSettings(BaseModel):
    """How live lessons live: limits, timeouts and expiry."""

    ttl_seconds: int = Field(
        default=3600, ge=10, description="A live lesson expires this long after its last keepalive."
    )
    session_ttl_seconds: int = Field(default=8 * 3600, ge=60, description="A learner session's lifetime.")
    max_live_lessons: int = Field(default=200, ge=1, description="Global limit of live lessons.")
    max_per_session: int = Field(default=3, ge=1, description="Live lessons one session may hold at once.")
    launch_timeout: float = Field(default=600.0, gt=0, description="Seconds from launch to READY before ERROR.")
    apply_timeout: float = Field(default=60.0, gt=0, description="Seconds to keep retrying object creation.")
    delete_timeout: float = Field(default=120.0, gt=0)
    probe_timeout: float = Field(default=300.0, gt=0, description="How long presentations may take to answer.")
    probe_attempt_timeout: float = Field(default=5.0, gt=0, description="One probe attempt's timeout.")
    http_probe_path: str = Field(default="/", description="What http presentations are probed with (GET).")
    unschedulable_grace: float = Field(default=30.0, ge=0, description="How long a pod may stay unschedulable.")
    gc_interval: float = Field(default=30.0, gt=0)
    leader_lease_seconds: float = Field(
        default=15.0,
        ge=1,
        description="Replicas elect one to collect garbage; a dead leader's Lease lapses after this.",
    )


class AccessSettings(BaseModel):
    """How learners reach their endpoints: terminals, the HTTP proxy, NETCONF, external exposure."""

    terminal_idle_timeout: float = Field(default=1800.0, gt=0, description="A terminal with no input closes.")
    terminals_per_livelesson: int = Field(default=16, ge=1, description="Open terminals per live lesson.")
    expose_credentials: bool = Field(
        default=False, description="Put the images' SSH credentials in the live lesson's API answer."
    )
    proxy_timeout: float = Field(default=60.0, gt=0, description="The HTTP proxy's timeout per request.")
    proxy_max_body_bytes: int = Field(default=100 * 1024 * 1024, description="Largest body the proxy passes on.")
    netconf_timeout: float = Field(default=30.0, gt=0, description="Timeout of one NETCONF RPC through the API.")


class LocalSettings(BaseModel):
    """The local runtime: live lessons as QEMU VMs on this machine, when no cluster is configured."""

    enabled: bool = Field(
        default=True, description="With no cluster configured, run live lessons as local VMs (false: catalog only)."
    )
    accel: Literal["auto", "kvm", "tcg"] = Field(
        default="auto", description="QEMU accelerator: auto uses KVM where the CPU really has it, else TCG."
    )
    qemu_binary: str = "qemu-system-x86_64"
    warm_boot: bool = Field(
        default=True,
        description="Restore tiny VMs from a saved, already-booted state (one per NIC count, made on first "
        "use) instead of booting each: about 1 s instead of 4 under TCG.",
    )
    boot_timeout: float = Field(default=120.0, gt=0, description="Seconds a VM may take to print its ready line.")
    state_dir: Path | None = Field(
        default=None, description="Consoles, overlays and lesson shares (default /tmp/syringe-local-<uid>/<instance>)."
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Where the tiny Linux VM is built (default /var/cache/syringe as root, else ~/.cache/syringe).",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SYRINGE_", env_nested_delimiter="__", extra="ignore")

    curriculum: Path = Field(default=Path("lessons"), description="The curriculum directory to serve.")
    host: str = "127.0.0.1"
    port: int = Field(default=8086, ge=1, le=65535)
    max_body_bytes: int = Field(default=64 * 1024, description="Largest request body the API accepts.")
    admin_token: SecretStr | None = Field(default=None, description="Bearer token of the admin API; unset disables it.")
    kubeconfig: str | None = Field(
        default=None, description="Kubeconfig of the cluster to run lessons in; in a pod, the service account is used."
    )
    plan: PlanSettings = Field(default_factory=PlanSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    local: LocalSettings = Field(default_factory=LocalSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
