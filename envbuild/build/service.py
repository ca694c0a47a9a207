"""`envbuild build`: generate the bundle directory, build it, record the image digest.

The image is tagged only after the build succeeded (`--iidfile`, then `tag`), so a failed
build never leaves a tagged partial image. The record holds the image id (config digest).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.build import builders as b
from envbuild.build.record import RECORD_FILE, BuildRecord, ImageBuild, parse_record, render_record
from envbuild.errors import EnvbuildError, LockError, NetworkError, ToolError
from envbuild.files import write_atomic
from envbuild.lock.loaded import Bundle, load_bundle
from envbuild.tools import Runner, which

Status = Callable[[str], None]
BUILD_TIMEOUT = 3600.0


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildOutcome:
    build: ImageBuild
    context: Path
    warnings: tuple[str, ...]
    changed_record: bool


def image_tag(bundle: Bundle, builder: str) -> str:
    name = bundle.lock.image.name
    local = f"{name}:{bundle.lock.short_id}"
    return local if builder == "docker" else f"localhost/{local}"


def require_builder(builder: str, runner: Runner) -> bool:
    """Check the builder can run; returns whether docker has buildx (False otherwise)."""
    if builder not in b.BUILDERS:
        raise EnvbuildError(f"unknown builder {builder!r}", hint=f"use one of {', '.join(b.BUILDERS)}")
    if which(builder) is None:
        others = [x for x in b.BUILDERS if x != builder and which(x)]
        raise ToolError(
            f"{builder} is not installed, so no image can be built with it",
            argv=[builder], returncode=127,
            hint=(f"install it (Debian: apt-get install {'docker.io' if builder == 'docker' else builder})"
                  + (f", or pass --builder {others[0]}" if others else "")),
        )
    if builder != "docker":
        return False
    info = runner.run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False)
    if info.returncode != 0:
        raise ToolError("the Docker engine is not running (docker info failed)",
                        argv=["docker", "info"], returncode=info.returncode, stderr=info.stderr,
                        hint="start dockerd, or pass --builder buildah (reproducible)")
    return runner.run(["docker", "buildx", "version"], check=False).returncode == 0


def _has_image(builder: str, ref: str, runner: Runner, driver: str | None) -> bool:
    return runner.run(b.exists_argv(builder, ref, driver), check=False).returncode == 0


def check_base(base: str, builder: str, runner: Runner, driver: str | None) -> None:
    """The pinned base must be local already or still served by its registry (by digest)."""
    if _has_image(builder, base, runner, driver):
        return
    import httpx

    from envbuild.lock.registry import ImageRef, resolve_digest

    ref = ImageRef.parse(base)
    try:
        with httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0), follow_redirects=True) as c:
            resolve_digest(ref, client=c)
    except LockError as exc:
        raise LockError(
            f"the registry no longer has the base image the lock pins: {base} ({exc.message})",
            hint="push that image back, or run `envbuild lock --upgrade` to pin what the "
            "registry serves now (a new bundle)",
        ) from None
    except NetworkError as exc:
        raise NetworkError(f"the base image {base} is not in local storage and its registry "
                           f"cannot be reached: {exc.message}", hint=exc.hint) from None


def _failed_step(output: str) -> str:
    """The Dockerfile step a builder was running when it failed ('STEP 3/9: RUN ...')."""
    steps = [line.strip() for line in output.splitlines()
             if line.startswith(("STEP ", "Step ", "#"))]
    return steps[-1] if steps else ""


def run_build(opts: b.BuildOptions, runner: Runner) -> str:
    """Build; return the image id. Nothing is tagged here."""
    env = b.docker_env(opts) if opts.builder == "docker" else {}
    try:
        runner.run(b.build_argv(opts), env=env, timeout=BUILD_TIMEOUT, what=f"{opts.builder} build")
    except ToolError as exc:
        if exc.returncode in (127, -1):
            raise
        if opts.builder == "docker" and "buildx component is missing" in exc.stderr:
            raise ToolError(
                "this docker CLI cannot build without buildx: the Dockerfile bind-mounts the "
                "wheels (RUN --mount), which needs BuildKit, and docker >= 23 reaches BuildKit "
                "only through buildx", argv=exc.argv, returncode=exc.returncode,
                stderr=exc.stderr,
                hint="install the buildx plugin (reproducible), put a docker CLI < 23 first on "
                "PATH (Debian's docker.io: /usr/bin/docker), or use --builder buildah",
            ) from None
        step = _failed_step(exc.stderr)
        where = f" at {step}" if step else ""
        raise ToolError(
            f"the image build failed{where} ({opts.builder} exit {exc.returncode}); no image "
            "was tagged", argv=exc.argv, returncode=exc.returncode, stderr=exc.stderr,
            hint="the builder's output is above; run with -v for the full command",
        ) from None
    image_id = Path(opts.iidfile).read_text().strip()
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"


def diff_ids(builder: str, ref: str, runner: Runner, driver: str | None) -> tuple[str, ...]:
    out = runner.run(b.inspect_argv(builder, ref, driver)).stdout
    return layers_from_inspect(json.loads(out))


def layers_from_inspect(data: Any) -> tuple[str, ...]:
    """diff_ids from `buildah inspect` / `podman image inspect` / `docker image inspect`."""
    if isinstance(data, list):
        data = data[0]
    for path in (("OCIv1", "rootfs", "diff_ids"), ("Docker", "rootfs", "diff_ids"),
                 ("RootFS", "Layers"),):
        node = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node:
            return tuple(node)
    return ()


def read_record(project: Path) -> BuildRecord | None:
    path = project / RECORD_FILE
    return parse_record(path.read_text()) if path.is_file() else None


def build_image(
    project: Path,
    *,
    builder: str = "buildah",
    platform: str | None = None,
    runner: Runner | None = None,
    status: Status = lambda _: None,
    context: Path | None = None,
    oci_archive: Path | None = None,
    load_docker: bool = False,
    record: bool = True,
    cache: bool = True,
) -> BuildOutcome:
    from envbuild.generate.context import check_platform, generate_bundle, host_platform

    runner = runner or Runner()
    platform = platform or host_platform()
    check_platform(platform)
    buildx = require_builder(builder, runner)
    bundle = load_bundle(project)
    base = bundle.lock.image.base or ""
    driver = b.storage_driver()
    generated = generate_bundle(project, out=context, platform=platform, runner=runner,
                                status=status)
    status(f"checking the base image {base}")
    check_base(base, builder, runner, driver)
    warnings = []
    if builder == "docker" and not buildx:
        warnings.append("docker without buildx builds with the engine's own BuildKit, which "
                        "has no SOURCE_DATE_EPOCH: the image works, but its digest will not "
                        "repeat on a rebuild (use --builder buildah)")
    with tempfile.TemporaryDirectory(prefix="envbuild-build-") as tmp:
        opts = b.BuildOptions(builder=builder, context=str(generated.directory.resolve()),
                              platform=platform, base=base, iidfile=f"{tmp}/iid",
                              cache=cache, storage_driver=driver, buildx=buildx)
        status(f"building with {builder} ({generated.wheels} wheels, {platform})")
        image_id = run_build(opts, runner)
    tag = image_tag(bundle, builder)
    runner.run(b.tag_argv(builder, image_id, tag, driver))
    layers = diff_ids(builder, image_id, runner, driver)
    archive_digest = None
    if oci_archive is not None or load_docker:
        archive_digest = export_image(builder, tag, bundle, runner, driver, oci_archive,
                                      load_docker, status,
                                      sbom=generated.directory / "sbom.cdx.json")
    build = ImageBuild(builder=builder, platform=platform, image_id=image_id, tag=tag,
                       layers=layers, base=base, reproducible=builder != "docker" or buildx,
                       oci_archive_digest=archive_digest)
    changed = False
    if record:
        previous = read_record(project)
        current = (previous if previous and previous.bundle == bundle.lock.bundle_id
                   else BuildRecord(bundle=bundle.lock.bundle_id))
        data = render_record(current.with_build(build))
        path = project / RECORD_FILE
        changed = not path.is_file() or path.read_bytes() != data
        if changed:
            write_atomic(path, data)
    return BuildOutcome(build=build, context=generated.directory, warnings=tuple(warnings),
                        changed_record=changed)


def export_image(builder: str, tag: str, bundle: Bundle, runner: Runner, driver: str | None,
                 oci_archive: Path | None, load_docker: bool, status: Status,
                 sbom: Path | None = None) -> str | None:
    """Write an OCI archive (and load it into the Docker engine); the archive's manifest digest.
    The SBOM goes beside the archive as `<archive>.cdx.json`."""
    with tempfile.TemporaryDirectory(prefix="envbuild-export-") as tmp:
        archive = oci_archive.resolve() if oci_archive else Path(tmp) / "image.oci.tar"
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_name(f".{archive.name}.partial")
        partial.unlink(missing_ok=True)
        name = f"{bundle.lock.image.name}:{bundle.lock.short_id}"
        status(f"exporting the OCI archive {archive}")
        runner.run(b.export_argv(builder, tag, f"oci-archive:{partial}:{name}", driver),
                   what="skopeo copy (OCI archive)")
        partial.replace(archive)
        if oci_archive is not None and sbom is not None:
            write_atomic(archive.with_name(archive.name + ".cdx.json"), sbom.read_bytes())
        digest = oci_archive_manifest_digest(archive)
        if load_docker:
            status(f"loading {name} into the Docker engine")
            runner.run(b.docker_load_argv(str(archive), name), what="skopeo copy (docker load)")
    return digest


def oci_archive_manifest_digest(archive: Path) -> str | None:
    import tarfile

    with tarfile.open(archive) as tar:
        f = tar.extractfile("index.json")
        if f is None:
            return None
        index = json.load(f)
    manifests = index.get("manifests", [])
    return manifests[0]["digest"] if manifests else None
