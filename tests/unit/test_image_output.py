"""`syringe image build tiny-linux --output DIR`: the tiny VM's files, put where the QEMU wrapper image's
Dockerfile copies them from. The build itself is stubbed (tests/local builds the real one)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from syringe.cli import main
from syringe.cli.images import place_files
from syringe.runtime.local import tinylinux
from syringe.runtime.local.tinylinux import TinyLinux


def _built(directory: Path, uncompressed: bool = True) -> TinyLinux:
    directory.mkdir(parents=True)
    (directory / "vmlinuz").write_bytes(b"bzImage")
    if uncompressed:
        (directory / "vmlinux").write_bytes(b"\x7fELF pvh")
    (directory / "initramfs.cpio").write_bytes(b"070701 cpio")
    return TinyLinux(directory)


def test_output_puts_the_booted_kernel_and_the_initramfs_under_fixed_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    image = _built(tmp_path / "cache" / "tiny-linux" / "abc")
    monkeypatch.setattr(tinylinux, "timed_build", lambda cache, force, flavour: (image, 0.1))
    out = tmp_path / "context" / ".build" / "tiny-linux"
    assert main(["image", "build", "tiny-linux", "--quiet", "--output", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert sorted(p.name for p in out.iterdir()) == ["initramfs.cpio", "vmlinuz"]
    assert (out / "vmlinuz").read_bytes() == b"\x7fELF pvh"  # image.kernel: what the local runtime boots
    assert os.path.samefile(out / "initramfs.cpio", image.initrd)  # one file system here: hard links

    assert main(["image", "build", "tiny-linux", "--output", str(out)]) == 0
    assert f"(also in {out})" in capsys.readouterr().out


def test_output_replaces_an_older_build_and_leaves_the_same_one_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    old = _built(tmp_path / "old", uncompressed=False)
    place_files({"vmlinuz": old.kernel, "initramfs.cpio": old.initrd}, out)
    assert (out / "vmlinuz").read_bytes() == b"bzImage"
    new = _built(tmp_path / "new")
    (new.directory / "initramfs.cpio").write_bytes(b"070701 newer")
    place_files({"vmlinuz": new.kernel, "initramfs.cpio": new.initrd}, out)
    assert (out / "vmlinuz").read_bytes() == b"\x7fELF pvh"
    assert (out / "initramfs.cpio").read_bytes() == b"070701 newer"
    assert old.initrd.read_bytes() == b"070701 cpio"  # the link was replaced, not written through

    inode = (out / "vmlinuz").stat().st_ino
    place_files({"vmlinuz": new.kernel}, out)
    assert (out / "vmlinuz").stat().st_ino == inode
    assert sorted(p.name for p in out.iterdir()) == ["initramfs.cpio", "vmlinuz"]  # no partial files left


def test_output_copies_across_file_systems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = _built(tmp_path / "cache")

    def cross_device(source: object, target: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    place_files({"initramfs.cpio": image.initrd}, tmp_path / "out")
    copied = tmp_path / "out" / "initramfs.cpio"
    assert copied.read_bytes() == b"070701 cpio"
    assert not os.path.samefile(copied, image.initrd)


def test_output_that_cannot_be_written_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    image = _built(tmp_path / "cache")
    monkeypatch.setattr(tinylinux, "timed_build", lambda cache, force, flavour: (image, 0.1))
    (tmp_path / "file").write_text("not a directory")
    assert main(["image", "build", "tiny-linux", "--quiet", "--output", str(tmp_path / "file")]) == 1
    assert f"writing into {tmp_path / 'file'}" in capsys.readouterr().err
