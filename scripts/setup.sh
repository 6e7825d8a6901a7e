#!/usr/bin/env bash
# Create .venv and install Syringe with its development tools. Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv 2>/dev/null || {
    # Debian's python3 needs python3-venv for ensurepip.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    "$PYTHON" -m venv .venv
  }
fi
stamp=".venv/.syringe-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" >"$stamp"
fi
# The local runtime (no cluster) boots lesson endpoints with QEMU, runs lesson code (configuration
# scripts, checks) in bubblewrap sandboxes, and relays a VM's connections to the lesson's other endpoints
# with socat (QEMU's guestfwd runs one per connection).
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v qemu-img >/dev/null || ! command -v bwrap >/dev/null \
  || ! command -v socat >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 qemu-utils bubblewrap socat >/dev/null
  else
    echo "setup: QEMU, bubblewrap or socat is missing; install them with:" \
      "sudo apt-get install qemu-system-x86 qemu-utils bubblewrap socat" >&2
  fi
fi
# The tiny Linux VM that stands in for Linux container images (seconds; cached after the first build).
.venv/bin/syringe image build tiny-linux --quiet
# Stage 1 of lesson images (`syringe image prepare`, `build debian-disk`): libguestfs' virt-customize, and
# what builds a bootable disk from a file with no loop device (mmdebstrap, sfdisk, mkfs.fat, mtools,
# syslinux's MBR). supermin, which makes libguestfs' appliance, looks at /lib/modules even when it is given
# another kernel (prepare gives it the tiny VM's): a machine with no kernel of its own needs the directory.
if ! command -v virt-customize >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v mcopy >/dev/null \
  || ! command -v mkfs.fat >/dev/null || ! command -v sfdisk >/dev/null || [ ! -e /usr/lib/syslinux/mbr/mbr.bin ]; then
  if [ "$(id -u)" = 0 ]; then
    packages=(libguestfs-tools mmdebstrap fdisk dosfstools mtools syslinux syslinux-common)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null 2>&1 || {
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    }
  else
    echo "setup: the image tools are missing; install them with: sudo apt-get install --no-install-recommends" \
      "libguestfs-tools mmdebstrap fdisk dosfstools mtools syslinux syslinux-common" >&2
  fi
fi
[ -d /lib/modules ] || { [ "$(id -u)" != 0 ] || mkdir -p /lib/modules; }
# The web front end's tools, for building ui/ and the browser tests: Debian's chromium, ui/node_modules.
scripts/setup-ui.sh
