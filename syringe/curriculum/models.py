"""The metafile models: Antidote's last lesson format, read as it is, plus strict additions.

Field names are snake_case in Python and camelCase in YAML, as Antidote wrote them. Every model forbids
unknown keys, and validation is strict (a port written as "22" is a string, not a port).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
# Endpoint names become pod, Service and DNS names, so they must be DNS-1123 labels.
ENDPOINT_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"

Slug = Annotated[str, Field(pattern=SLUG_PATTERN, max_length=63)]
Port = Annotated[int, Field(ge=1, le=65535)]
Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN)]
NonEmpty = Annotated[str, Field(min_length=1)]

LINK_SCHEMES = ("http", "https")


def _http_or_relative(value: str) -> str:
    """A link a front end may put in an href or src: http(s), or relative. A lesson comes from a pull
    request, and a javascript: or data: URL there runs in the learner's browser."""
    if not value:
        return value
    if value != value.strip() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError("a link must not hold control characters or surrounding spaces")
    scheme = urlsplit(value).scheme
    if scheme and scheme.lower() not in LINK_SCHEMES:
        raise ValueError(f"'{scheme}:' links are not allowed; use an http(s) URL or a relative link")
    return value


# Syringe checks these (Antidote did not): http(s) or relative, never javascript:, data:, ...
Link = Annotated[str, AfterValidator(_http_or_relative)]

PresentationType = Literal["ssh", "http", "netconf"]
ConfigurationType = Literal["python", "ansible", "napalm", "netconf"]
GuideType = Literal["markdown", "jupyter"]
Flavor = Literal["trusted", "untrusted", "legacy"]
ImageKind = Literal["container", "vm"]
LocalKind = Literal["tiny-linux", "disk", "kernel"]
# What a tiny VM carries beyond busybox, OpenSSH, bash and ping (syringe/runtime/local/tinylinux.py).
TinyFlavour = Literal["base", "netconf", "inventory", "utility", "frr"]
Tier = Literal["prod", "ptr", "local"]
Category = Literal["fundamentals", "tools", "workflows"]
CollectionType = Literal["vendor", "community", "consultancy"]

NAPALM_DRIVERS: tuple[str, ...] = ("junos", "eos", "iosxr", "nxos", "nxos_ssh", "ios")


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
    )


class Curriculum(Model):
    """``curriculum.meta.yaml``."""

    name: NonEmpty
    description: str = ""
    website: Link = ""
    a_ver: str = Field(default="", description="The Antidote version the curriculum was written for.")
    git_root: str = ""


class Collection(Model):
    """``collections/<slug>/collection.meta.yaml``."""

    slug: Slug
    title: NonEmpty
    image: Link = Field(default="", description="Logo URL: http(s) or relative.")
    website: Link = ""
    contact_email: str = ""
    brief_description: str = ""
    long_description: str = ""
    type: CollectionType = "community"
    tier: Tier = "prod"


class Resources(Model):
    """Kubernetes requests for an endpoint's pod; limits default to twice the request."""

    cpu: Quantity = "250m"
    memory: Quantity = "256Mi"


class VirtualMachine(Model):
    """What a QEMU wrapper boots. Syringe addition (``kind: vm``)."""

    memory: Quantity = Field(default="1Gi", description="Guest memory, a Kubernetes quantity such as 2Gi.")
    cpus: Annotated[int, Field(ge=1, le=64)] = 1
    disk: str = Field(default="", description="The VM disk inside the wrapper image (or its URL).")
    kernel: str = Field(
        default="",
        description="Instead of disk: a kernel inside the wrapper image, booted with initrd (Syringe's tiny VM is "
        "/images/tiny-linux/vmlinuz in the project's wrapper image). The launcher gives the guest its hostname, "
        "addresses and login on the kernel command line.",
    )
    initrd: str = Field(default="", description="With kernel: the initrd inside the wrapper image.")
    append: str = Field(default="", description="With kernel: extra kernel command-line parameters.")

    @model_validator(mode="after")
    def _boots_one_way(self) -> VirtualMachine:
        if self.disk and self.kernel:
            raise ValueError("vm needs disk: or kernel: (with initrd:), not both")
        if not self.disk and not self.kernel:
            raise ValueError("vm needs disk: (a qcow2 image) or kernel: and initrd:")
        if self.kernel and not self.initrd:
            raise ValueError("vm kernel: needs initrd:")
        if self.append and not self.kernel:
            raise ValueError("vm append: is for kernel: boots")
        return self


class LocalRun(Model):
    """How the local runtime (a machine with no cluster) runs the image as a QEMU VM. Syringe addition."""

    kind: LocalKind = Field(
        description="tiny-linux: Syringe's tiny Linux VM stands in (for Linux container images); disk: boot a "
        "qcow2 disk through an overlay, so a restart resets it; kernel: boot a kernel and an initrd."
    )
    flavour: TinyFlavour = Field(
        default="base",
        description="kind tiny-linux: what the VM carries beyond the base (busybox, OpenSSH on 22 and 830, bash, "
        "ping, a web page on 80): netconf, a NETCONF server with real edit-config semantics and operational "
        "state; inventory, that and the inventory REST service on 8080; utility, that and curl, tcpdump, "
        "traceroute and python3; frr, FRRouting's zebra, staticd, ospfd and bgpd, with vtysh for the learner.",
    )
    disk: str = Field(default="", description="kind disk: the qcow2 image, absolute or relative to the image's "
                      "directory.")  # fmt: skip
    kernel: str = Field(default="", description="kind kernel: the kernel, absolute or relative.")
    initrd: str = Field(default="", description="kind kernel: the initrd, absolute or relative.")
    append: str = Field(default="", description="kind kernel: extra kernel command-line parameters.")
    memory: Quantity = Field(default="128Mi", description="Guest memory.")
    cpus: Annotated[int, Field(ge=1, le=64)] = 1
    ready_line: str = Field(
        default="",
        description="Text the guest prints on its serial console once it serves (kinds disk and kernel); "
        "Syringe probes it only after. tiny-linux has its own.",
    )

    @model_validator(mode="after")
    def _needs_its_files(self) -> LocalRun:
        if self.kind == "disk" and not self.disk:
            raise ValueError("local kind disk needs disk: the qcow2 image to boot")
        if self.kind == "kernel" and not (self.kernel and self.initrd):
            raise ValueError("local kind kernel needs kernel: and initrd:")
        if self.flavour != "base" and self.kind != "tiny-linux":
            raise ValueError(f"local flavour {self.flavour} is a flavour of the tiny VM: it needs kind tiny-linux")
        return self


PREPARED_READY_LINE = "SYRINGE-DISK-READY"  # what a disk prepared by `syringe image prepare` prints when it serves
DEBIAN_PACKAGE_PATTERN = r"^[a-z0-9][a-z0-9+.-]{1,99}$"
GROUP_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"
UNIT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9@_.:-]{0,127}$"


class ConsoleStep(Model):
    """One step of a console script: wait for text on the serial console, then type a line."""

    expect: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        description="Text to wait for on the serial console (plain text, not a pattern)."
    )
    send: Annotated[str, Field(max_length=1024)] | None = Field(
        default=None, description="The line to type once it appears (Enter is added); none: only wait."
    )
    timeout: Annotated[int, Field(ge=1, le=3600)] = Field(default=120, description="Seconds to wait for expect.")
    secret: bool = Field(default=False, description="Never show what is sent (a password) in progress or errors.")


class Prepare(Model):
    """How `syringe image prepare` makes a base disk ready for Syringe (stage 1). Syringe addition."""

    base: str = Field(
        default="", description="The base disk (qcow2 or raw) inside the image's directory; --base names any other."
    )
    groups: list[Annotated[str, Field(pattern=GROUP_PATTERN)]] = Field(
        default_factory=list, max_length=32, description="Groups sshUser and configUser join (made when missing)."
    )
    packages: list[Annotated[str, Field(pattern=DEBIAN_PACKAGE_PATTERN)]] = Field(
        default_factory=list, max_length=256, description="Debian packages to install (downloaded on the host)."
    )
    services: list[Annotated[str, Field(pattern=UNIT_PATTERN)]] = Field(
        default_factory=list,
        max_length=64,
        description="systemd units to enable; netconf: Syringe's NETCONF server as the SSH subsystem on port 830.",
    )
    commands: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        default_factory=list, max_length=64, description="Shell commands run in the disk, last, as root."
    )
    console: list[ConsoleStep] = Field(
        default_factory=list,
        max_length=256,
        description="For appliances: a script run once over the serial console of the booted base; it must end "
        "with the guest powered off. Instead of groups, packages, services and commands.",
    )
    timeout: Annotated[int, Field(ge=10, le=14400)] = Field(default=1800, description="Seconds for the whole prepare.")

    @model_validator(mode="after")
    def _one_way_in(self) -> Prepare:
        if self.console and (self.groups or self.packages or self.services or self.commands):
            raise ValueError(
                "prepare: console: drives an appliance through its serial console; groups, packages, services "
                "and commands prepare a Linux disk offline: use one or the other"
            )
        return self


class Image(Model):
    """``images/<slug>/image.meta.yaml``."""

    slug: Slug
    description: str = ""
    flavor: Flavor = "untrusted"
    kind: ImageKind = Field(default="container", description="Syringe addition: container or QEMU vm.")
    enable_forwarding: bool = False
    network_interfaces: list[str] = Field(default_factory=list)
    ssh_user: str = ""
    ssh_password: str = ""
    config_user: str = ""
    config_password: str = ""
    resources: Resources | None = Field(default=None, description="Syringe addition: pod requests.")
    vm: VirtualMachine | None = Field(default=None, description="Syringe addition: required for kind vm.")
    local: LocalRun | None = Field(
        default=None, description="Syringe addition: how to run the image with no cluster; without it, it cannot."
    )
    prepare: Prepare | None = Field(
        default=None, description="Syringe addition: how `syringe image prepare` makes the base disk ready."
    )

    @model_validator(mode="after")
    def _prepare_needs_a_disk(self) -> Image:
        if self.prepare is None:
            return self
        if not ((self.local is not None and self.local.kind == "disk") or (self.vm is not None and self.vm.disk)):
            raise ValueError("prepare: makes a disk: the image needs local: kind disk or vm: disk:")
        if not self.prepare.console and not self.ssh_user:
            raise ValueError("prepare: makes sshUser's login: the image needs sshUser and sshPassword")
        return self

    def ready_line(self) -> str:
        """What the image's disk or kernel prints on its console once it serves ("": nothing known)."""
        declared = self.local.ready_line if self.local is not None else ""
        return declared or (PREPARED_READY_LINE if self.prepare is not None and not self.prepare.console else "")


class Presentation(Model):
    name: Annotated[str, Field(pattern=ENDPOINT_NAME_PATTERN)]
    port: Port
    type: PresentationType


class Endpoint(Model):
    name: Annotated[str, Field(pattern=ENDPOINT_NAME_PATTERN)]
    image: Slug
    configuration_type: ConfigurationType | None = None
    additional_ports: list[Port] = Field(default_factory=list)
    presentations: list[Presentation] = Field(default_factory=list)

    def ports(self) -> list[int]:
        """Every port the endpoint serves: presentations first, then additional ports, without repeats."""
        seen: dict[int, None] = {}
        for presentation in self.presentations:
            seen.setdefault(presentation.port, None)
        for port in self.additional_ports:
            seen.setdefault(port, None)
        return list(seen)


class Connection(Model):
    a: NonEmpty
    b: NonEmpty
    subnet: str | None = None


class Author(Model):
    name: NonEmpty
    link: Link = ""


class Check(Model):
    """A learner check (Syringe addition): a command run on an endpoint whose output must match, or a
    script in ``stageN/checks/`` that exits 0 when the learner got it right."""

    name: Annotated[str, Field(pattern=ENDPOINT_NAME_PATTERN)]
    description: str = Field(default="", description="What the learner reads next to the result.")
    endpoint: Annotated[str, Field(pattern=ENDPOINT_NAME_PATTERN)]
    command: str | None = Field(default=None, description="Run over SSH on the endpoint.")
    expect: str | None = Field(default=None, description="A regular expression the command's output must match.")
    script: str | None = Field(default=None, description="A python file in stageN/checks/, run by the checker.")


class Stage(Model):
    description: str = ""
    guide_type: GuideType = "markdown"
    stage_video: Link = ""
    verify: list[Check] = Field(default_factory=list, description="Syringe addition: learner checks.")


class Lesson(Model):
    """``lessons/<slug>/lesson.meta.yaml``."""

    name: NonEmpty
    slug: Slug
    category: Category
    tier: Tier = "prod"
    prereqs: list[Slug] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    authors: list[Author] = Field(default_factory=list)
    description: str = ""
    short_description: str = ""
    collection: Slug | None = None
    diagram: Link = ""
    video: Link = ""
    ready_delay: Annotated[int, Field(ge=0, le=3600)] = 0
    endpoints: Annotated[list[Endpoint], Field(min_length=1)]
    connections: list[Connection] = Field(default_factory=list)
    stages: Annotated[list[Stage], Field(min_length=1)]

    def endpoint(self, name: str) -> Endpoint:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise KeyError(name)


METAFILE_MODELS: dict[str, type[Model]] = {
    "curriculum": Curriculum,
    "collection": Collection,
    "image": Image,
    "lesson": Lesson,
}


def config_file_names(endpoint: str, configuration_type: ConfigurationType) -> list[str]:
    """The file names that satisfy ``configuration_type`` in a stage's ``configs/`` (any one of them)."""
    if configuration_type == "python":
        return [f"{endpoint}.py"]
    if configuration_type == "ansible":
        return [f"{endpoint}.yml"]
    if configuration_type == "netconf":
        return [f"{endpoint}.xml"]
    return [f"{endpoint}-{driver}.txt" for driver in NAPALM_DRIVERS]


def napalm_driver(endpoint: str, file_name: str) -> str | None:
    """The NAPALM driver named by ``<endpoint>-<driver>.txt``, or None."""
    match = re.fullmatch(re.escape(endpoint) + r"-(.+)\.txt", file_name)
    if match and match.group(1) in NAPALM_DRIVERS:
        return match.group(1)
    return None
