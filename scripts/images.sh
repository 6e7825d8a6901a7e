#!/usr/bin/env bash
# Syringe's OCI images, built from the project's own Dockerfiles without a Docker daemon or a registry:
# podman (buildah 1.28) with storage and configuration of its own, runc, and a Debian base made with
# mmdebstrap and imported under the name the Dockerfiles' FROM uses.
#
#   localhost/syringe/syringe:dev          Dockerfile: the service, and the configurator image
#   localhost/syringe/qemu-wrapper:dev     images/qemu-wrapper/Dockerfile, with the tiny Linux VM at
#   localhost/syringe/<slug>:dev             /images/tiny-linux/; and under the slug of each example VM
#                                            image that boots it (linux-router, netconf-router): the same
#                                            image, more names
#
# Usage:
#   scripts/images.sh build                  install the tools (idempotent), build what is not cached, and
#                                            print one line per image name: `NAME ARCHIVE`
#   scripts/images.sh import                 build, then load the archives into the local node's containerd
#                                            (scripts/k8s-node.sh import); prints what build prints
#   scripts/images.sh push REGISTRY [TAG]    build, then push each image as REGISTRY/syringe/NAME:TAG (TAG
#                                            defaults to dev); prints `NAME PUSHED_REFERENCE` per image name
#   scripts/images.sh wrap CONTEXT NAME [--load] [--push REGISTRY TAG]
#                                            build the wrapper (cached), then CONTEXT's Dockerfile (FROM the
#                                            wrapper) as NAME, cached by the context's content; prints
#                                            `archive PATH` (and `pushed REF`); --load imports it into the
#                                            node. `syringe image wrap` writes the context and calls this.
#   scripts/images.sh clean                  forget the podman storage and the cached archives
# Progress goes to stderr; stdout carries only the lines above.
#
# Each image is a docker-archive (`podman save --format docker-archive`, every name of the image in it),
# cached under a content key: sha256 over this recipe's version, the Dockerfile, .dockerignore, every file
# the Dockerfile copies from the build context (__pycache__ and *.pyc left out, as .dockerignore leaves them
# out), and the base image's key. An archive whose key is there is not built again: a warm run takes
# seconds. The base (debian:bookworm-slim) is cached the same way, by its recipe. The wrapper's context
# includes .build/tiny-linux/, which `syringe image build tiny-linux --output .build/tiny-linux` writes
# (hard links into its own cache) before the key is computed.
#
# pip inside the builds reaches PyPI through this machine's CA bundle, given as the build secret `ca`
# (--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt); nothing of it stays in an image.
#
# Environment (optional):
#   SYRINGE_IMAGES_CACHE   archives, podman's storage and configuration, the lock (default
#                          /var/cache/syringe-images, outside the checkout)
#   SYRINGE_IMAGES_CA      the CA bundle given to the builds (default /etc/ssl/certs/ca-certificates.crt)
#
# Runs as root (mmdebstrap, native overlay storage). Runs of one cache take turns (flock on its lock file).
# Left outside the cache: podman writes /var/lib/containers/cache/blob-info-cache-v1.boltdb whatever its
# storage root (`clean` removes it when this script's first run created /var/lib/containers); and the
# builds' runc leaves empty libpod_parent cgroup directories, which each run removes.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
CACHE="${SYRINGE_IMAGES_CACHE:-/var/cache/syringe-images}"
CA="${SYRINGE_IMAGES_CA:-/etc/ssl/certs/ca-certificates.crt}"
RECIPE="syringe-images-2"  # change it when a change here should rebuild every image
TAG=dev
BASE_IMAGE=docker.io/library/debian:bookworm-slim
STORAGE="$CACHE/storage"
RUNROOT="$CACHE/run"
WORK="$CACHE/tmp"
KEEP=2  # archives kept per image (the newest), so that switching back to a recent tree stays warm
TOOLS=(podman buildah skopeo mmdebstrap uidmap runc)

# The example curriculum's VM images that boot the tiny VM the wrapper holds: each is the wrapper itself,
# under the image's slug (as the plan names endpoint images: registry/slug:tag).
tiny_vm_images() {
  local meta
  for meta in "$REPO"/lessons/images/*/image.meta.yaml; do
    grep -q '^ *kernel: /images/tiny-linux/' "$meta" && printf ' localhost/syringe/%s:%s' "$(basename "$(dirname "$meta")")" "$TAG"
  done
  return 0
}

# The images: short name, Dockerfile, every name it gets (the first is its own).
IMAGES=(
  "syringe|Dockerfile|localhost/syringe/syringe:$TAG"
  "qemu-wrapper|images/qemu-wrapper/Dockerfile|localhost/syringe/qemu-wrapper:$TAG$(tiny_vm_images)"
  "utility|images/utility/Dockerfile|localhost/syringe/utility:$TAG"
  "api-server|images/api-server/Dockerfile|localhost/syringe/api-server:$TAG"
  "frr|images/frr/Dockerfile|localhost/syringe/frr:$TAG"
)

# The base: Debian's minbase with the merged-usr hook, without documentation, man pages and locales (the
# slim variant's dpkg excludes, which stay in the image for later installs), from the suites and with the
# apt settings of the official image. Its key is this recipe.
BASE_SOURCES=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)
BASE_OPTIONS=(
  --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
)
# apt in a build removes the packages it downloaded and fetches no translations, as in the official image.
APT_CLEAN='DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";'
APT_NO_LANGUAGES='Acquire::Languages "none";'
BASE_CHANGES=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'CMD ["bash"]'
)

say() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------------------------------ tools, podman
install_tools() {
  local p need=()
  for p in "${TOOLS[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || need+=("$p")
  done
  [ "${#need[@]}" -gt 0 ] || return 0
  say "apt-get install ${need[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

configure_podman() { # everything podman keeps or reads, under $CACHE; nothing global
  mkdir -p "$STORAGE" "$RUNROOT" "$WORK" "$CACHE/netconf"
  if [ ! -e "$CACHE/.var-lib-containers" ] && [ ! -e /var/lib/containers ]; then
    touch "$CACHE/.var-lib-containers"  # so that `clean` may remove what podman writes there
  fi
  cat >"$CACHE/storage.conf.new" <<EOF
[storage]
driver = "overlay"
graphroot = "$STORAGE"
runroot = "$RUNROOT"
EOF
  # crun cannot run on a cgroups v1 hybrid host, and root here may not raise rlimits (no
  # CAP_SYS_RESOURCE): runc, cgroupfs and fixed ulimits. No systemd: events go to a file.
  cat >"$CACHE/containers.conf.new" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$RUNROOT/events.log"
tmp_dir = "$RUNROOT/libpod"
image_copy_tmp_dir = "$WORK"
[network]
network_config_dir = "$CACHE/netconf"
EOF
  mv "$CACHE/storage.conf.new" "$CACHE/storage.conf"
  mv "$CACHE/containers.conf.new" "$CACHE/containers.conf"
}

pm() {
  CONTAINERS_CONF="$CACHE/containers.conf" CONTAINERS_STORAGE_CONF="$CACHE/storage.conf" TMPDIR="$WORK" \
    podman "$@"
}

remove_empty_cgroups() { # runc under cgroupfs leaves these behind, empty
  local d
  for d in /sys/fs/cgroup/*/libpod_parent /sys/fs/cgroup/libpod_parent; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

# ------------------------------------------------------------------------------------------ keys
copied_paths() { # Dockerfile -> the build-context paths its COPY instructions name (not --from), one a line
  awk '
    toupper($1) == "ARG" && index($2, "=") { split($2, kv, "="); arg[kv[1]] = kv[2] }
    toupper($1) == "COPY" && $0 !~ /--from/ {
      for (i = 2; i < NF; i++) {
        if ($i ~ /^--/) continue
        path = $i
        for (name in arg) { gsub("\\$\\{" name "\\}", arg[name], path); gsub("\\$" name, arg[name], path) }
        print path
      }
    }' "$1"
}

base_key() {
  printf '%s\n' "$RECIPE" "${BASE_SOURCES[@]}" "${BASE_OPTIONS[@]}" "$APT_CLEAN" "$APT_NO_LANGUAGES" \
    "${BASE_CHANGES[@]}" | sha256sum | cut -c1-16
}

image_key() { # Dockerfile base-key -> 16 hex digits
  local dockerfile="$1" paths=()
  mapfile -t paths < <(copied_paths "$REPO/$dockerfile")
  (
    cd "$REPO"
    for p in "${paths[@]}"; do [ -e "$p" ] || die "$dockerfile copies $p, which is not there"; done
    printf '%s\n' "$RECIPE" "base $2"
    sha256sum "$dockerfile" .dockerignore
    # Every file (with its mode) and link under the copied paths, in a fixed order.
    find "${paths[@]}" \( -name __pycache__ -prune \) -o \( -type f -o -type l \) ! -name '*.pyc' \
      -printf '%p %m %l\n' | LC_ALL=C sort
    find "${paths[@]}" \( -name __pycache__ -prune \) -o -type f ! -name '*.pyc' -print0 \
      | LC_ALL=C sort -z | xargs -0 -r sha256sum
  ) | sha256sum | cut -c1-16
}

# ------------------------------------------------------------------------------------------ build
ensure_base() { # the base image in podman's storage, from its cached tarball (made once)
  local key tar id
  key="$(base_key)"
  tar="$CACHE/base-debian-bookworm-slim-$key.tar"
  if [ ! -s "$tar" ]; then
    say "making $BASE_IMAGE with mmdebstrap (minbase, bookworm; about a minute)"
    rm -rf "$WORK/base" && mkdir -p "$WORK/base/add/etc/apt/apt.conf.d"
    mmdebstrap --quiet "${BASE_OPTIONS[@]}" bookworm "$WORK/base/base.tar" "${BASE_SOURCES[@]}" >&2
    # The apt settings go in afterwards: inside the chroot, mmdebstrap's own clean-up would read them (and
    # run their Post-Invoke on this machine).
    printf '%s\n' "$APT_CLEAN" >"$WORK/base/add/etc/apt/apt.conf.d/docker-clean"
    printf '%s\n' "$APT_NO_LANGUAGES" >"$WORK/base/add/etc/apt/apt.conf.d/docker-no-languages"
    chmod 0644 "$WORK/base/add/etc/apt/apt.conf.d/"*
    tar --append --owner=0 --group=0 --numeric-owner -f "$WORK/base/base.tar" -C "$WORK/base/add" \
      ./etc/apt/apt.conf.d/docker-clean ./etc/apt/apt.conf.d/docker-no-languages
    mv "$WORK/base/base.tar" "$tar"
    rm -rf "$WORK/base"
    find "$CACHE" -maxdepth 1 -name 'base-debian-bookworm-slim-*' ! -name "*-$key.*" -delete
  fi
  id="$(pm image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)"
  if [ -z "$id" ] || [ "$id" != "$(cat "$CACHE/base-debian-bookworm-slim-$key.id" 2>/dev/null)" ]; then
    say "importing $tar as $BASE_IMAGE"
    pm import "${BASE_CHANGES[@]}" "$tar" "$BASE_IMAGE" >/dev/null
    pm image inspect --format '{{.Id}}' "$BASE_IMAGE" >"$CACHE/base-debian-bookworm-slim-$key.id"
  fi
}

prepare_context() { # what the Dockerfiles copy that the checkout does not hold
  local syringe="$REPO/.venv/bin/syringe"
  [ -x "$syringe" ] || "$REPO/scripts/setup.sh" >&2
  say "the tiny Linux VM into .build/tiny-linux, its netconf flavour into .build/tiny-linux-netconf (cached)"
  "$syringe" image build tiny-linux --quiet --output "$REPO/.build/tiny-linux" >&2
  "$syringe" image build tiny-linux --flavour netconf --quiet --output "$REPO/.build/tiny-linux-netconf" >&2
}

build_image() { # short-name dockerfile "names" archive
  local short="$1" dockerfile="$2" archive="$4" names=() tags=() n started
  read -r -a names <<<"$3"
  for n in "${names[@]}"; do tags+=(-t "$n"); done
  [ -s "$CA" ] || die "no CA bundle at $CA (set SYRINGE_IMAGES_CA)"
  ensure_base
  started=$SECONDS
  say "building ${names[0]} from $dockerfile"
  pm build --pull=never --network host --format docker --secret "id=ca,src=$CA" \
    --iidfile "$WORK/$short.iid" "${tags[@]}" -f "$REPO/$dockerfile" "$REPO" >&2
  say "saving ${names[*]} to $archive"
  rm -f "$archive.partial"
  pm save --format docker-archive --multi-image-archive -o "$archive.partial" "${names[@]}" >&2
  mv "$WORK/$short.iid" "${archive%.tar}.id"
  mv "$archive.partial" "$archive"
  say "${names[0]}: built and saved in $((SECONDS - started)) s"
  # Older archives of this image, beyond the newest $KEEP.
  find "$CACHE" -maxdepth 1 -name "$short-*.tar" -printf '%T@ %p\n' | sort -rn | tail -n +"$((KEEP + 1))" \
    | cut -d' ' -f2- | while read -r old; do rm -f "$old" "${old%.tar}.id"; done
}

RESULT=()  # "short|names|archive" per image, after build_all

build_all() { # [short-name ...]: only those images (default: all)
  local spec short dockerfile names key archive bkey built=0 started only=" $* "
  started="$(date +%s)"
  install_tools
  configure_podman
  # Working containers a killed build left behind (buildah's, outside podman's own list) would pin their
  # images; under the lock no other build is running, so any there are leftovers.
  local leftover
  for leftover in $(pm ps --all --external --format '{{.ID}}' 2>/dev/null); do
    say "removing $leftover, a working container a killed build left"
    pm rm --force --storage "$leftover" >/dev/null 2>&1 || true
  done
  prepare_context
  bkey="$(base_key)"
  for spec in "${IMAGES[@]}"; do
    IFS='|' read -r short dockerfile names <<<"$spec"
    [ "$only" = "  " ] || [[ "$only" == *" $short "* ]] || continue
    key="$(image_key "$dockerfile" "$bkey")"
    archive="$CACHE/$short-$key.tar"
    if [ -s "$archive" ]; then
      say "${names%% *}: cached ($archive)"
    else
      build_image "$short" "$dockerfile" "$names" "$archive"
      built=1
    fi
    RESULT+=("$short|$names|$archive")
  done
  if [ "$built" = 1 ]; then
    # Images no name points at any more, left by earlier runs (an image removed takes its unnamed parents
    # along). This run's intermediate layers stay: the next build reuses those of unchanged steps.
    pm image prune -f --filter "until=$started" >/dev/null || say "could not prune older images (left for the next run)"
  fi
  remove_empty_cgroups
}

print_archives() {
  local r short names archive n
  for r in "${RESULT[@]}"; do
    IFS='|' read -r short names archive <<<"$r"
    for n in $names; do printf '%s %s\n' "$n" "$archive"; done
  done
}

ensure_loaded() { # archive name: podman's storage has the archive's build under its names (loaded if not)
  local archive="$1" name="$2" want have
  want="$(cat "${archive%.tar}.id" 2>/dev/null || true)"
  have="$(pm image inspect --format '{{.Id}}' "$name" 2>/dev/null || true)"
  if [ -z "$want" ] || [ "${have#sha256:}" != "${want#sha256:}" ]; then
    say "loading $archive"
    pm load -i "$archive" >&2
  fi
}

# ------------------------------------------------------------------------------------------ commands
lock() {
  mkdir -p "$CACHE"
  exec 9>>"$CACHE/.lock"
  flock -n 9 || { say "waiting for another scripts/images.sh on $CACHE"; flock 9; }
}

cmd_import() {
  local r short names archive archives=()
  for r in "${RESULT[@]}"; do
    IFS='|' read -r short names archive <<<"$r"
    archives+=("$archive")
  done
  say "importing ${#archives[@]} archives into the node's containerd"
  "$HERE/k8s-node.sh" import "${archives[@]}"
}

push_one() { # name registry tag: push NAME as REGISTRY/<NAME without localhost/>:TAG; prints the reference
  local name="$1" remote
  remote="$2/${name#localhost/}"
  remote="${remote%:*}:$3"
  say "pushing $name as $remote"
  pm tag "$name" "$remote"
  # v2s2 (Docker's manifest) keeps HEALTHCHECK, as the build's --format docker does.
  if ! pm push --format v2s2 "$remote" >&2; then
    pm untag "$name" "$remote" || true
    die "pushing $remote failed (podman login to the registry first, when it needs credentials)"
  fi
  pm untag "$name" "$remote"
  printf '%s\n' "$remote"
}

cmd_push() { # registry tag
  local registry="${1%/}" tag="$2" r short names archive n remote pushed=()
  for r in "${RESULT[@]}"; do
    IFS='|' read -r short names archive <<<"$r"
    ensure_loaded "$archive" "${names%% *}"
    for n in $names; do
      remote="$(push_one "$n" "$registry" "$tag")"
      pushed+=("$n $remote")
    done
  done
  printf '%s\n' "${pushed[@]}"
}

cmd_wrap() { # context name [--load] [--push REGISTRY TAG]: a stage-1 wrapper (syringe image wrap)
  local context="$1" name="$2" load=0 registry="" tag="$TAG" r short names archive wrapper="" key safe remote
  shift 2
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --load) load=1; shift ;;
      --push) [ "$#" -ge 3 ] || die "wrap: --push REGISTRY TAG"; registry="${2%/}"; tag="$3"; shift 3 ;;
      *) die "wrap: unknown option $1" ;;
    esac
  done
  [ -f "$context/Dockerfile" ] || die "wrap: $context has no Dockerfile"
  for r in "${RESULT[@]}"; do
    IFS='|' read -r short names archive <<<"$r"
    [ "$short" = qemu-wrapper ] && wrapper="$archive"
  done
  ensure_loaded "$wrapper" "localhost/syringe/qemu-wrapper:$TAG"  # what the Dockerfile's FROM names
  # Keyed by the wrapper's build, the name and every byte of the context (the disk included).
  key="$( { printf '%s\n' "$RECIPE" "$(basename "$wrapper")" "$name"
            (cd "$context" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); } | sha256sum | cut -c1-16)"
  safe="$(printf '%s' "$name" | tr -c 'a-zA-Z0-9._-' '_')"
  archive="$CACHE/wrap-$safe-$key.tar"
  if [ -s "$archive" ]; then
    say "$name: cached ($archive)"
  else
    say "building $name from $context"
    pm build --pull=never --format docker --iidfile "$WORK/wrap.iid" -t "$name" -f "$context/Dockerfile" "$context" >&2
    say "saving $name to $archive"
    rm -f "$archive.partial"
    pm save --format docker-archive -o "$archive.partial" "$name" >&2
    mv "$WORK/wrap.iid" "${archive%.tar}.id"
    mv "$archive.partial" "$archive"
    find "$CACHE" -maxdepth 1 -name "wrap-$safe-*.tar" ! -name "*-$key.tar" -printf '%p\n' \
      | while read -r old; do rm -f "$old" "${old%.tar}.id"; done
  fi
  printf 'archive %s\n' "$archive"
  if [ "$load" = 1 ]; then
    say "importing $name into the node's containerd"
    "$HERE/k8s-node.sh" import "$archive" >&2
  fi
  if [ -n "$registry" ]; then
    ensure_loaded "$archive" "$name"
    remote="$(push_one "$name" "$registry" "$tag")"  # an assignment: a failed push ends the script (set -e)
    printf 'pushed %s\n' "$remote"
  fi
  remove_empty_cgroups
}

cmd_clean() {
  if [ -d "$STORAGE" ] && command -v podman >/dev/null; then
    configure_podman
    say "removing podman's storage"
    pm system reset -f >/dev/null 2>&1 || true
  fi
  # Overlay mounts a killed build may have left under the storage, then everything but the lock.
  { grep -o " $CACHE/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount "$m" 2>/dev/null || true; done
  if [ -e "$CACHE/.var-lib-containers" ]; then
    rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb
    rmdir /var/lib/containers/cache /var/lib/containers 2>/dev/null || true
  fi
  find "$CACHE" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
  remove_empty_cgroups
  say "removed $CACHE's images and storage"
}

main() {
  [ "$(id -u)" = 0 ] || die "run as root (mmdebstrap and podman's overlay storage need it)"
  case "${1:-}" in
    build) lock; build_all; print_archives ;;
    import) lock; build_all; cmd_import; print_archives ;;
    push)
      { [ "$#" -ge 2 ] && [ "$#" -le 3 ]; } || die "usage: $0 push REGISTRY [TAG]"
      lock; build_all; cmd_push "$2" "${3:-$TAG}"; remove_empty_cgroups ;;
    wrap)
      [ "$#" -ge 3 ] || die "usage: $0 wrap CONTEXT NAME [--load] [--push REGISTRY TAG]"
      lock; build_all qemu-wrapper; cmd_wrap "${@:2}" ;;
    clean) lock; cmd_clean ;;
    *) die "usage: $0 build | import | push REGISTRY [TAG] | wrap CONTEXT NAME [--load] [--push REGISTRY TAG] | clean" ;;
  esac
}

main "$@"
