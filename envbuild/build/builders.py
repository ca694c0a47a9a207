"""The command lines of every builder. Pure: options in, argv lists out (tested as lists).

buildah and podman share containers-storage and give the same image id for the same context:
`--timestamp` clamps every file time and the `created` fields, so a rebuild repeats bit for
bit. The image format is OCI (see _containers_flags for why not docker).
docker: BuildKit through buildx with SOURCE_DATE_EPOCH and rewrite-timestamp where buildx
exists; otherwise the engine's built-in BuildKit, whose image id does not repeat.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

BUILDERS = ("buildah", "podman", "docker")
SOURCE_DATE_EPOCH = 0  # every clamped time: 1970-01-01T00:00:00Z
_LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?/")


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildOptions:
    builder: str
    context: str  # the bundle directory
    platform: str = "linux/amd64"
    base: str = ""  # the pinned base image, to decide on TLS for a loopback registry
    iidfile: str = ""
    cache: bool = True  # False: rebuild every step (verify --rebuild)
    storage_driver: str | None = None  # containers-storage driver; None: storage.conf's
    buildx: bool = False  # docker only: buildx is installed
    extra_env: dict[str, str] = field(default_factory=dict)


def storage_driver() -> str | None:
    """The containers-storage driver: the machine's default (overlay where the kernel has it,
    many times faster than vfs, which copies the whole tree at every step), or
    ENVBUILD_STORAGE_DRIVER=vfs where overlay cannot work. One storage keeps one driver."""
    return os.environ.get("ENVBUILD_STORAGE_DRIVER") or None


def insecure_registry(ref: str) -> bool:
    """A registry on loopback is plain HTTP (as `envbuild lock` reaches it)."""
    return bool(_LOOPBACK.match(ref))


def storage_flags(driver: str | None) -> list[str]:
    return ["--storage-driver", driver] if driver else []


def build_argv(opts: BuildOptions) -> list[str]:
    if opts.builder == "buildah":
        return ["buildah", *storage_flags(opts.storage_driver), "bud", *_containers_flags(opts), opts.context]
    if opts.builder == "podman":
        return ["podman", *storage_flags(opts.storage_driver), "build", *_containers_flags(opts), opts.context]
    if opts.builder == "docker":
        return _docker_argv(opts)
    raise ValueError(f"unknown builder {opts.builder!r}")


def _containers_flags(opts: BuildOptions) -> list[str]:
    flags = [
        "--isolation", "chroot",  # no runtime or cgroups needed; works as root in containers
        # OCI, not docker: the docker format's config embeds the random id and hostname of
        # each step's build container, so intermediate ids (which later history entries name)
        # never repeat and no step is ever served from cache. OCI has no HEALTHCHECK field:
        # the command also rides along as the dev.envbuild.healthcheck label.
        "--format", "oci",
        "--platform", opts.platform,
        "--timestamp", str(SOURCE_DATE_EPOCH),
        # One layer per step, always: without --layers buildah squashes each stage into one
        # layer, a different image. Steps are cached between builds (a code change rebuilds
        # the code layer only); --no-cache reruns every step with the same layout. The base
        # is pulled when missing: it is pinned by digest, so a local copy is the same image.
        "--layers=true",
        "--iidfile", opts.iidfile,
        "--file", f"{opts.context}/Dockerfile",
    ]
    if not opts.cache:
        flags.append("--no-cache")
    if opts.base and insecure_registry(opts.base):
        flags.append("--tls-verify=false")
    return flags


def docker_env(opts: BuildOptions) -> dict[str, str]:
    """Environment of the docker build: BuildKit with a fixed clock, or the classic builder."""
    if opts.buildx:
        return {"SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)}
    # Without buildx: the engine's built-in BuildKit, not the classic builder, which has no
    # `RUN --mount` (the wheels are bind-mounted, never copied into a layer). Its digest does
    # not repeat either: this BuildKit predates SOURCE_DATE_EPOCH.
    return {"DOCKER_BUILDKIT": "1"}


def _docker_argv(opts: BuildOptions) -> list[str]:
    if opts.buildx:
        argv = ["docker", "buildx", "build", "--platform", opts.platform,
                "--build-arg", f"SOURCE_DATE_EPOCH={SOURCE_DATE_EPOCH}",
                "--output", "type=docker,rewrite-timestamp=true",
                "--iidfile", opts.iidfile, "--file", f"{opts.context}/Dockerfile"]
    else:
        argv = ["docker", "build", "--iidfile", opts.iidfile,
                "--file", f"{opts.context}/Dockerfile"]
    if not opts.cache:
        argv.append("--no-cache")
    return [*argv, opts.context]


def tag_argv(builder: str, image_id: str, tag: str, driver: str | None = None) -> list[str]:
    if builder == "docker":
        return ["docker", "tag", image_id, tag]
    return [builder, *storage_flags(driver), "tag", image_id, tag]


def remove_argv(builder: str, ref: str, driver: str | None = None) -> list[str]:
    if builder == "docker":
        return ["docker", "rmi", ref]
    return [builder, *storage_flags(driver), "rmi", ref]


def inspect_argv(builder: str, ref: str, driver: str | None = None) -> list[str]:
    """The image's config and manifest as JSON (its layers' diff_ids among them)."""
    if builder == "docker":
        return ["docker", "image", "inspect", ref]
    if builder == "podman":
        return ["podman", *storage_flags(driver), "image", "inspect", ref]
    return ["buildah", *storage_flags(driver), "inspect", "--type", "image", ref]


def exists_argv(builder: str, ref: str, driver: str | None = None) -> list[str]:
    if builder == "docker":
        return ["docker", "image", "inspect", "--format", "{{.Id}}", ref]
    return ["buildah", *storage_flags(driver), "inspect", "--type", "image",
            "--format", "{{.FromImageID}}", ref]


def export_argv(builder: str, ref: str, dest: str, driver: str | None = None) -> list[str]:
    """Copy an image out of the builder's storage. `dest` is a transport reference:
    `oci-archive:PATH:NAME`, `oci:DIR`, `docker-archive:PATH:NAME`."""
    if builder == "docker":
        return ["skopeo", "copy", "--quiet", f"docker-daemon:{ref}", dest]
    storage = "containers-storage:"
    ref = ref.removeprefix("sha256:")  # an image id is named by its bare hex
    if driver:
        storage += f"[{driver}@/var/lib/containers/storage+/run/containers/storage]"
    return ["skopeo", "copy", "--quiet", f"{storage}{ref}", dest]


def docker_load_argv(archive: str, tag: str) -> list[str]:
    """Load an OCI archive into the Docker engine (docker 20.10 cannot `docker load` OCI)."""
    return ["skopeo", "copy", "--quiet", f"oci-archive:{archive}", f"docker-daemon:{tag}"]
