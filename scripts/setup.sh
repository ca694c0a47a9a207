#!/usr/bin/env bash
# Set up what the tests need on this machine: Debian tools, the project's venv, a container
# registry on 127.0.0.1:5000 and a Python base image pushed to it. Idempotent: safe to re-run, and
# a second run only checks. Runs as root (CI runs it on a fresh machine as root).
#
# Environment:
#   ENVBUILD_CACHE_DIR  where the base image's layer tar and OCI layout are kept (/var/cache/envbuild)
#   ENVBUILD_STATE_DIR  the registry's config, storage and log (/var/lib/envbuild-ci)
#   ENVBUILD_REGISTRY   host:port the registry listens on (127.0.0.1:5000)
set -euo pipefail

REPO_TOP=$(cd "$(dirname "$0")/.." && pwd)
CACHE_DIR=${ENVBUILD_CACHE_DIR:-/var/cache/envbuild}
STATE_DIR=${ENVBUILD_STATE_DIR:-/var/lib/envbuild-ci}
REGISTRY=${ENVBUILD_REGISTRY:-127.0.0.1:5000}
BASE_REPO=envbuild/python
BASE_TAG=3.11-bookworm
BASE_IMAGE=$REGISTRY/$BASE_REPO:$BASE_TAG
# Debian packages the tests use. buildah/podman build images (reproducibly); docker.io runs
# them (and is the third builder); skopeo exports and loads images; xfsprogs (mkfs.xfs) makes
# the loop-mounted XFS file system the reflink tests check out onto (tests/integration/conftest.py).
APT_PACKAGES=(docker-registry skopeo debootstrap debian-archive-keyring nix-bin git curl
              ca-certificates python3 python3-venv buildah podman docker.io xfsprogs)
# A fixed clock for everything written into the base image (shadow's last-change day, ...).
SOURCE_DATE_EPOCH_FIXED=1704067200  # 2024-01-01T00:00:00Z

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
START=$SECONDS

[ "$(id -u)" = 0 ] || die "run as root (apt-get, debootstrap and the registry's state dir need it)"

# ---- Debian packages ---------------------------------------------------------------------------
apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
}

install_packages() {
    local missing=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$' \
            || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "Debian packages: all installed (${APT_PACKAGES[*]})"
        return
    fi
    # apt-get update only when the lists are missing or older than a day.
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
        log "apt-get update"
        apt-get update -q >&2
    fi
    log "apt-get install ${missing[*]}"
    # policy-rc.d 101: packages must not start their own services (the Debian docker-registry
    # would listen on :5000 with its own config); this script starts what it needs itself.
    local policy=/usr/sbin/policy-rc.d had_policy=0
    [ -e "$policy" ] && had_policy=1
    if [ $had_policy = 0 ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"
    fi
    local ok=1
    if ! apt_install "${missing[@]}"; then
        # Package lists from an older snapshot than the mirror: refresh them once and retry.
        log "apt-get install failed; apt-get update and one retry"
        apt-get update -q >&2 && apt_install "${missing[@]}" || ok=0
    fi
    [ $had_policy = 0 ] && rm -f "$policy"
    [ $ok = 1 ] || die "apt-get install ${missing[*]} failed (output above)"
}

# ---- the project's venv ------------------------------------------------------------------------
setup_venv() {
    local venv=$REPO_TOP/.venv stamp want
    stamp=$venv/.envbuild-setup-stamp
    want=$(sha256sum "$REPO_TOP/pyproject.toml" | cut -d' ' -f1)
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        log "creating the venv $venv (python3 -m venv, $(command -v python3))"
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
        && (cd / && "$venv/bin/python" -c 'import envbuild, pytest, hypothesis, httpx') 2>/dev/null; then
        log "venv: up to date ($venv)"
        return
    fi
    log "pip install -e '.[test]' into $venv"
    (cd "$REPO_TOP" && "$venv/bin/pip" install -q -e '.[test]' >&2)
    printf '%s\n' "$want" >"$stamp"
}

# ---- the registry ------------------------------------------------------------------------------
registry_up() { curl -fsS -o /dev/null --max-time 2 "http://$REGISTRY/v2/" 2>/dev/null; }

start_registry() {
    local dir=$STATE_DIR/registry
    if registry_up; then
        log "registry: already answering on http://$REGISTRY/v2/"
        return
    fi
    command -v docker-registry >/dev/null || die "docker-registry is not installed"
    mkdir -p "$dir/data"
    cat >"$dir/config.yml" <<YAML
# Written by scripts/setup.sh: a plain-HTTP registry on loopback for envbuild's tests.
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
  secret: envbuild-ci-loopback-only
  headers:
    X-Content-Type-Options: [nosniff]
YAML
    log "starting docker-registry on $REGISTRY (config $dir/config.yml, log $dir/registry.log)"
    # setsid + redirections: it outlives this script and holds none of the caller's pipes, nor
    # the set-up lock (fd 9).
    setsid docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null 9>&- &
    echo $! >"$dir/registry.pid"
    local i
    for i in $(seq 1 60); do
        if registry_up; then
            log "registry: up after ${i}00 ms (pid $(cat "$dir/registry.pid"))"
            return
        fi
        if ! kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null && ! registry_up; then
            tail -20 "$dir/registry.log" >&2 || true
            die "docker-registry exited at start; its log is above ($dir/registry.log)"
        fi
        sleep 0.1
    done
    tail -20 "$dir/registry.log" >&2 || true
    die "the registry never answered on http://$REGISTRY/v2/ (6 s); its log is above"
}

# ---- the Docker engine --------------------------------------------------------------------------
docker_up() { docker info >/dev/null 2>&1; }

start_dockerd() {
    # The image tests run the built image under the Docker engine. dockerd starts in about a
    # second; it treats 127.0.0.0/8 registries as insecure (plain HTTP) by default.
    local dir=$STATE_DIR/docker
    if docker_up; then
        log "dockerd: already running"
        return
    fi
    command -v dockerd >/dev/null || die "dockerd is not installed (Debian docker.io)"
    mkdir -p "$dir"
    log "starting dockerd (data $dir/data, log $dir/dockerd.log)"
    setsid dockerd --host unix:///var/run/docker.sock --data-root "$dir/data" \
        --exec-root /var/run/envbuild-docker --pidfile "$dir/dockerd.pid" \
        >>"$dir/dockerd.log" 2>&1 </dev/null 9>&- &
    local i
    for i in $(seq 1 150); do
        if docker_up; then
            log "dockerd: up after ${i}00 ms"
            return
        fi
        sleep 0.1
    done
    tail -20 "$dir/dockerd.log" >&2 || true
    die "dockerd did not answer within 15 s; its log is above"
}

# ---- the base image ----------------------------------------------------------------------------
debian_mirror() {
    # The first Debian (non-security) mirror apt uses, deb822 .sources or one-line .list files.
    local url
    url=$(awk '
        /^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }
        /^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /security/) { print $i; exit } break } }
    ' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
    printf '%s\n' "${url:-http://deb.debian.org/debian}"
}

cleanup_rootfs_mounts() {
    local root=$1
    # Unmount anything debootstrap left mounted below the rootfs, deepest first.
    awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r \
        | while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
}

build_layer_tar() {
    # debootstrap a minimal bookworm with Python, strip what differs between runs, and tar it
    # with sorted names, numeric owner 0 and every mtime at 0, so one rootfs gives one digest.
    local out=$1 work=$CACHE_DIR/work root mirror
    mirror=$(debian_mirror)
    mkdir -p "$work"
    root=$(mktemp -d "$work/rootfs.XXXXXX")
    trap 'cleanup_rootfs_mounts "'"$root"'"; rm -rf --one-file-system "'"$root"'"' EXIT
    log "debootstrap --variant=minbase bookworm from $mirror (about 2 minutes)"
    if ! SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH_FIXED debootstrap --variant=minbase \
            --include=python3,python3-venv,ca-certificates bookworm "$root" "$mirror" \
            >"$work/debootstrap.log" 2>&1; then
        tail -30 "$work/debootstrap.log" >&2 || true
        [ -f "$root/debootstrap/debootstrap.log" ] && tail -30 "$root/debootstrap/debootstrap.log" >&2
        die "debootstrap failed (log above, $work/debootstrap.log)"
    fi
    cleanup_rootfs_mounts "$root"
    log "removing caches, logs and per-run files from the rootfs"
    rm -rf --one-file-system "$root/var/cache/apt" "$root/var/lib/apt/lists" "$root/debootstrap"
    mkdir -p "$root/var/cache/apt/archives/partial" "$root/var/lib/apt/lists/partial"
    find "$root/var/log" -mindepth 1 -type f -delete
    rm -f "$root/var/cache/ldconfig/aux-cache" "$root"/var/lib/dpkg/*-old \
          "$root"/var/cache/debconf/*-old "$root"/etc/*- "$root/etc/resolv.conf" \
          "$root/etc/hostname" "$root/var/lib/dbus/machine-id"
    : >"$root/etc/machine-id"
    find "$root/dev" "$root/proc" "$root/sys" "$root/run" "$root/tmp" "$root/var/tmp" \
        -mindepth 1 -delete 2>/dev/null || true
    # Sorted, NUL-separated member list: names as OCI layers write them (no leading ./).
    (cd "$root" && find . -mindepth 1 -printf '%P\0' | LC_ALL=C sort -z) >"$work/members"
    log "writing the layer tar ($(tr -cd '\0' <"$work/members" | wc -c) entries)"
    tar --create --file="$out.tmp" --directory="$root" --no-recursion --null \
        --files-from="$work/members" --format=gnu --sort=none --numeric-owner \
        --owner=0 --group=0 --mtime=@0 --no-acls --no-xattrs --no-selinux
    mv "$out.tmp" "$out"
    rm -f "$work/members"
    cleanup_rootfs_mounts "$root"
    rm -rf --one-file-system "$root"
    trap - EXIT
}

build_oci_layout() {
    # Layer tar -> a single-layer OCI image layout (deterministic gzip, no created time).
    local tar=$1 layout=$2 arch
    arch=$(dpkg --print-architecture)
    rm -rf "$layout.tmp"
    python3 - "$tar" "$layout.tmp" "$BASE_TAG" "$arch" <<'PY'
import hashlib, json, os, sys, zlib

tar_path, layout, tag, arch = sys.argv[1:5]
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs)

def put(data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)

# gzip with zlib's own header (mtime 0, no name): the same tar always gives the same bytes.
diff_id, gz_sha, size = hashlib.sha256(), hashlib.sha256(), 0
tmp = os.path.join(blobs, "layer.tmp")
comp = zlib.compressobj(6, zlib.DEFLATED, 31)
with open(tar_path, "rb") as src, open(tmp, "wb") as dst:
    while chunk := src.read(1 << 20):
        diff_id.update(chunk)
        out = comp.compress(chunk)
        gz_sha.update(out)
        dst.write(out)
        size += len(out)
    out = comp.flush()
    gz_sha.update(out)
    dst.write(out)
    size += len(out)
os.rename(tmp, os.path.join(blobs, gz_sha.hexdigest()))
layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
         "digest": "sha256:" + gz_sha.hexdigest(), "size": size}

def canon(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

config = {
    "architecture": arch,
    "os": "linux",
    "config": {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG=C.UTF-8"],
        "Cmd": ["python3"],
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id.hexdigest()]},
    "history": [{"created_by": "debootstrap --variant=minbase "
                 "--include=python3,python3-venv,ca-certificates bookworm (envbuild scripts/setup.sh)"}],
}
cfg_digest, cfg_size = put(canon(config))
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": cfg_digest, "size": cfg_size},
    "layers": [layer],
}
man_digest, man_size = put(canon(manifest))
index = {"schemaVersion": 2, "manifests": [{
    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": man_digest,
    "size": man_size, "annotations": {"org.opencontainers.image.ref.name": tag}}]}
with open(os.path.join(layout, "index.json"), "wb") as f:
    f.write(canon(index))
with open(os.path.join(layout, "oci-layout"), "wb") as f:
    f.write(canon({"imageLayoutVersion": "1.0.0"}))
print(man_digest)
PY
    rm -rf "$layout"
    mv "$layout.tmp" "$layout"
}

registry_digest() {
    # The digest the registry serves for $1 (repo:tag as a manifest path), empty when it has none.
    curl -fsS --max-time 10 -o /dev/null -D - \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://$REGISTRY/v2/$BASE_REPO/manifests/$BASE_TAG" 2>/dev/null \
        | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }'
}

layout_digest() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
        "$1/index.json"
}

base_image() {
    local dir=$CACHE_DIR/base-image/python-$BASE_TAG tar layout have local_digest
    tar=$dir/layer.tar
    layout=$dir/oci
    mkdir -p "$dir"
    have=$(registry_digest || true)
    if [ -f "$layout/index.json" ]; then
        local_digest=$(layout_digest "$layout")
    elif [ -n "$have" ]; then
        log "base image: the registry has $BASE_IMAGE ($have); no local layout to compare, kept"
        BASE_DIGEST=$have
        return
    fi
    if [ -z "${local_digest:-}" ]; then
        if [ -f "$tar" ]; then
            log "base image: layer tar cached ($tar), debootstrap skipped"
        else
            build_layer_tar "$tar"
        fi
        log "building the OCI layout $layout"
        build_oci_layout "$tar" "$layout" >/dev/null
        local_digest=$(layout_digest "$layout")
    else
        log "base image: OCI layout cached ($layout, $local_digest)"
    fi
    if [ "$have" = "$local_digest" ]; then
        log "base image: the registry already has $BASE_IMAGE at $have; push skipped"
    else
        log "pushing $BASE_IMAGE (skopeo copy)"
        skopeo copy --quiet --dest-tls-verify=false "oci:$layout:$BASE_TAG" "docker://$BASE_IMAGE"
    fi
    BASE_DIGEST=$(registry_digest || true)
    [ -n "$BASE_DIGEST" ] || die "the registry does not serve $BASE_IMAGE after the push"
    [ "$BASE_DIGEST" = "$local_digest" ] \
        || log "warning: the registry serves $BASE_DIGEST, the local layout says $local_digest"
}

main() {
    # One set-up at a time (two test runs started together share the venv, registry and cache).
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/setup.lock"
    if ! flock -n 9; then
        log "another scripts/setup.sh is running; waiting for it"
        flock 9
    fi
    install_packages
    setup_venv
    start_registry
    start_dockerd
    base_image
    log "done in $((SECONDS - START)) s"
    log "base image $BASE_IMAGE"
    # The one line on stdout: the pushed base image, pinned by the digest the registry reports.
    printf '%s@%s\n' "$REGISTRY/$BASE_REPO" "$BASE_DIGEST"
}

# Sourcing the file (e.g. to rebuild the layer by hand and compare digests) defines the functions only.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
