#!/usr/bin/python3
"""A one-layer image as a docker-archive tarball (what `docker save` writes), from files on this machine:
no registry, no daemon, no container tooling. scripts/k8s-node.sh makes the node's pause image and the
end-to-end tests' busybox image with it, and imports them with `ctr -n k8s.io images import`.

  mkimage.py OUT.tar REF [--file SRC:DEST[:MODE]]... [--symlink LINK:TARGET]... [--dir DIR]...
             [--text DEST=CONTENT]... [--entrypoint JSON] [--cmd JSON] [--env K=V]...

The output is a function of the inputs alone (fixed times, owners and order), so a cache keyed by the
inputs' content holds the same bytes a rebuild would write.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from pathlib import PurePosixPath

EPOCH = "1970-01-01T00:00:00Z"


class Layer:
    """The layer's tar stream: parents before children, each path once, owned by root, at time 0."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.seen: set[str] = set()

    def _parents(self, path: str) -> None:
        for parent in reversed(PurePosixPath(path).parents[:-1]):
            self.directory(str(parent))

    def _add(self, info: tarfile.TarInfo, data: bytes | None = None) -> None:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = 0
        self.tar.addfile(info, io.BytesIO(data) if data is not None else None)
        self.seen.add(info.name)

    def directory(self, path: str) -> None:
        path = path.strip("/")
        if not path or path in self.seen:
            return
        self._parents(path)
        info = tarfile.TarInfo(path)
        info.type, info.mode = tarfile.DIRTYPE, 0o1777 if path == "tmp" else 0o755
        self._add(info)

    def file(self, path: str, data: bytes, mode: int) -> None:
        path = path.strip("/")
        self._parents(path)
        info = tarfile.TarInfo(path)
        info.size, info.mode = len(data), mode
        self._add(info, data)

    def symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        if path in self.seen:
            return
        self._parents(path)
        info = tarfile.TarInfo(path)
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        self._add(info)


def _member(out: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    out.addfile(info, io.BytesIO(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("ref", help="the image's name, e.g. localhost/busybox:e2e")
    parser.add_argument("--file", action="append", default=[], help="SRC:DEST[:MODE] (octal mode, default 755)")
    parser.add_argument("--symlink", action="append", default=[], help="LINK:TARGET")
    parser.add_argument("--dir", action="append", default=[])
    parser.add_argument("--text", action="append", default=[], help="DEST=CONTENT (\\n for new lines)")
    parser.add_argument("--entrypoint", help="a JSON list")
    parser.add_argument("--cmd", help="a JSON list")
    parser.add_argument("--env", action="append", default=[], help="K=V")
    args = parser.parse_args()

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        layer = Layer(tar)
        for path in args.dir:
            layer.directory(path)
        for spec in args.file:
            source, dest, *mode = spec.split(":")
            with open(source, "rb") as handle:
                layer.file(dest, handle.read(), int(mode[0], 8) if mode else 0o755)
        for spec in args.text:
            dest, content = spec.split("=", 1)
            layer.file(dest, content.replace("\\n", "\n").encode(), 0o644)
        for spec in args.symlink:
            link, target = spec.split(":", 1)
            layer.symlink(link, target)
    blob = buffer.getvalue()

    diff_id = hashlib.sha256(blob).hexdigest()
    config_section: dict[str, object] = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *args.env],
        "WorkingDir": "/",
    }
    if args.entrypoint:
        config_section["Entrypoint"] = json.loads(args.entrypoint)
    if args.cmd:
        config_section["Cmd"] = json.loads(args.cmd)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": EPOCH,
            "config": config_section,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
            "history": [{"created": EPOCH, "created_by": "tests/node/mkimage.py"}],
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [args.ref], "Layers": [f"{diff_id}/layer.tar"]}])
    with tarfile.open(args.out, "w", format=tarfile.PAX_FORMAT) as out:
        _member(out, f"{diff_id}/layer.tar", blob)
        _member(out, config_name, config)
        _member(out, "manifest.json", manifest.encode())
    print(f"{args.out}: {args.ref}, one layer sha256:{diff_id[:12]}, {len(blob)} bytes")


if __name__ == "__main__":
    main()
