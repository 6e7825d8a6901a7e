"""What the operator allows a curriculum, which comes from community pull requests and is not trusted:
caps on sizes and shapes, where image files may live, which images may run privileged, and whether guide
HTML is sanitised. A plain model: the curriculum never reads the environment (syringe.settings does)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024


class CurriculumLimits(BaseModel):
    """Caps on what a curriculum may hold. Each breach is a validation problem, and reading holds to them too.

    The defaults are far above any Antidote lesson (the largest NRE Labs lessons are tens of KiB in a few
    dozen files) and follow from where the files go: every file of a lesson reaches its pods through
    ConfigMaps, which Kubernetes caps at 1 MiB each and stores in etcd for every live lesson."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file_bytes: int = Field(
        default=MIB, ge=1, description="Largest file a lesson may hold (a ConfigMap cannot carry more)."
    )
    lesson_bytes: int = Field(
        default=8 * MIB, ge=1, description="All of a lesson's files together (copied into every live lesson)."
    )
    lesson_files: int = Field(default=1000, ge=1, description="Files one lesson may hold.")
    directory_depth: int = Field(
        default=16, ge=1, description="Directory levels below lessons/ and below a lesson's own directory."
    )
    metafile_bytes: int = Field(default=MIB, ge=1, description="Largest metafile (*.meta.yaml).")


class CurriculumPolicy(BaseModel):
    """Everything the loader and the catalog take from the operator. The default is the safe policy: default
    limits, image files only inside their image's directory, no privilege policy configured (so no
    privilege problems), guides served as written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limits: CurriculumLimits = Field(default_factory=CurriculumLimits)
    image_dirs: tuple[Path, ...] = Field(
        default=(), description="Directories outside the curriculum where images' local: files may live."
    )
    privileged_images: frozenset[str] | None = Field(
        default=None,
        description="Image slugs whose pods may run privileged; None: the operator has set no list, so a "
        "metafile asking for privilege is not a validation problem (the plan still refuses it).",
    )
    sanitize_guides: bool = Field(default=False, description="Pass rendered guide HTML through nh3.")
