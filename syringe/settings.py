"""Service settings, read from the environment with the prefix SYRINGE_ (nested with __)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from syringe.curriculum.policy import CurriculumLimits, CurriculumPolicy
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
    refusal_grace: float = Field(
        default=20.0,
        gt=0,
        description="Seconds a presentation's port may refuse or cut every connection once its endpoint is up "
        "(the VM's ready line, the pod Ready) before the launch fails: nothing listens there.",
    )
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
    proxy_per_livelesson: int = Field(
        default=16, ge=1, description="Proxied requests in flight at once per live lesson (429 beyond)."
    )
    proxy_per_session: int = Field(
        default=32, ge=1, description="Proxied requests in flight at once per session, its live lessons together."
    )
    proxy_deadline: float = Field(
        default=600.0, gt=0, description="Seconds one proxied exchange may take in all, the response body included."
    )
    proxy_min_rate: int = Field(
        default=1024, ge=0, description="Bytes a second a proxied response body must keep up (0: no minimum)."
    )
    proxy_rate_grace: float = Field(
        default=30.0, gt=0, description="The window that rate is judged over; the first one is the grace period."
    )
    proxy_origin_template: str = Field(
        default="",
        description="Serve each HTTP presentation on an origin of its own, e.g. "
        "https://{livelesson}-{endpoint}-{presentation}.labs.example.net (wildcard DNS and certificate to Syringe); "
        "empty: under a path prefix of Syringe's own origin, with origin-wide headers and cookies kept out.",
    )
    proxy_content_security_policy: str = Field(
        default="",
        description="A Content-Security-Policy added to proxied responses on Syringe's own origin, e.g. "
        "'sandbox allow-scripts allow-forms allow-popups' (pages then cannot use their cookies).",
    )
    terminal_max_frame_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest WebSocket message a terminal takes (1009 beyond)."
    )
    terminal_max_input_bytes: int = Field(
        default=1024 * 1024,
        ge=64 * 1024,
        description="Input a terminal holds for an endpoint that does not take it (4413 beyond).",
    )
    netconf_per_livelesson: int = Field(
        default=4, ge=1, description="NETCONF RPCs through the API in flight at once per live lesson (429 beyond)."
    )
    netconf_max_reply_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest NETCONF message Syringe reads (502 beyond)."
    )

    def model_post_init(self, context: object, /) -> None:
        template = self.proxy_origin_template
        placeholders = ("{livelesson}", "{endpoint}", "{presentation}")
        if template and (
            not template.startswith(("http://", "https://")) or any(p not in template for p in placeholders)
        ):
            raise ValueError(
                "proxy_origin_template is http(s)://host with {livelesson}, {endpoint} and {presentation} in the "
                f"host, not {template!r}"
            )


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
    image_dirs: list[Path] = Field(
        default_factory=list,
        description="Directories outside the curriculum where images' local: disks, kernels and initrds may be "
        "(absolute paths elsewhere are validation problems); empty: only inside each image's own directory.",
    )
    trust_lesson_code: bool = Field(
        default=False,
        description="Where bubblewrap cannot sandbox lesson code (configuration scripts, checks), run it anyway, "
        "unconfined and as Syringe's user; false: such Jobs fail, saying why.",
    )


class ApiSettings(BaseModel):
    """What one caller may cost: requests per client address, event streams per session, lookups of
    unknown tokens."""

    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Proxies (addresses or CIDRs) whose X-Forwarded-For names the client; empty: the peer is.",
    )
    sessions_per_minute: float = Field(default=60.0, gt=0, description="Session creations per client address.")
    session_burst: int = Field(default=30, ge=1, description="Session creations one address may make at once.")
    launches_per_minute: float = Field(default=12.0, gt=0, description="Launch requests per client address.")
    launch_burst: int = Field(default=20, ge=1, description="Launch requests one address may make at once.")
    rate_limited_addresses: int = Field(
        default=10_000, ge=1, description="Client addresses each rate limit remembers (least recent forgotten)."
    )
    event_streams_per_session: int = Field(default=8, ge=1, description="Open event streams per session.")
    token_lookups_per_second: float = Field(
        default=5.0, gt=0, description="Store lookups of tokens this replica does not know, all callers together."
    )
    token_lookup_burst: int = Field(default=20, ge=1, description="Such lookups at once.")


class AntidoteSettings(BaseModel):
    """The Antidote dialect: the REST calls (/exp, /acore/exp) and the socket.io terminal (/socket.io/) that an
    unchanged antidote-web front end makes. Like antidote-core, it shows the images' SSH passwords to anyone
    holding a live lesson's id."""

    enabled: bool = Field(
        default=True,
        description="Serve the Antidote dialect for antidote-web; it shows SSH passwords to the browser (false: off).",
    )
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:*", "http://localhost:*"],
        description="Origins of pages on another origin that may call the dialect and open its terminals: "
        "scheme://host[:port], * as the port for any, or * alone for all. A page on Syringe's own host always may.",
    )
    public_base: str = Field(
        default="",
        description="host[:port][/path] where browsers reach the dialect, for http presentations' HepDomain and "
        "jupyter guides' GuideDomain; empty: the host each request was sent to (and /acore when it came under it).",
    )

    def model_post_init(self, context: object, /) -> None:
        for origin in self.allowed_origins:
            scheme, sep, rest = origin.partition("://")
            if origin != "*" and (scheme not in ("http", "https") or not sep or not rest or "/" in rest):
                raise ValueError(f"an allowed origin is scheme://host[:port] (or *), not {origin!r}")
        if "://" in self.public_base:
            raise ValueError(f"public_base is host[:port][/path], without a scheme, not {self.public_base!r}")
        self.public_base = self.public_base.rstrip("/")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SYRINGE_", env_nested_delimiter="__", extra="ignore")

    curriculum: Path = Field(default=Path("lessons"), description="The curriculum directory to serve.")
    curriculum_limits: CurriculumLimits = Field(
        default_factory=CurriculumLimits, description="Caps on an untrusted curriculum's files, sizes and depth."
    )
    sanitize_guides: bool = Field(
        default=False, description="Pass guide HTML through nh3 (strips scripts, event handlers, javascript: links)."
    )
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
    api: ApiSettings = Field(default_factory=ApiSettings)
    antidote: AntidoteSettings = Field(default_factory=AntidoteSettings)

    def curriculum_policy(self) -> CurriculumPolicy:
        """What the operator allows the curriculum, for load_curriculum: its caps, where image files may
        live, and which images may run privileged (a metafile asking for more is a validation problem)."""
        privileged = self.plan.privileged_images
        return CurriculumPolicy(
            limits=self.curriculum_limits,
            image_dirs=tuple(self.local.image_dirs),
            privileged_images=frozenset(privileged) if privileged is not None else None,
            sanitize_guides=self.sanitize_guides,
        )
