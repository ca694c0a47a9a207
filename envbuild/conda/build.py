"""`envbuild conda build` / `install`: from envbuild.lock and conda-lock.yml to a prefix or image.

conda-lock.yml is checked against the digest envbuild.lock records before use, each package
against its sha256 before it is linked, each wheel against pylock.toml before it is copied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envbuild.conda.lockfile import CondaLock
from envbuild.errors import IntegrityError, LockError
from envbuild.files import sha256_bytes
from envbuild.tools import Runner

Status = Callable[[str], None]
CONTEXT_DIR = Path(".envbuild") / "conda-bundle"
OCI_PLATFORM = {"linux-64": "linux/amd64", "linux-aarch64": "linux/arm64"}


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaBuildOutcome:
    image_id: str
    platform: str
    context: Path
    conda_packages: int
    wheels: int


def load_conda_lock(project: Path) -> CondaLock:
    """conda-lock.yml, checked against envbuild.lock's [conda] digest."""
    from envbuild.conda.lockfile import parse_conda_lock
    from envbuild.lock.loaded import load_bundle

    lock = load_bundle(project).lock
    if not lock.conda:
        raise LockError("envbuild.lock pins no conda environment",
                        hint="add [conda] environment = \"environment.yml\" to the spec and run "
                        "`envbuild lock`")
    name = lock.conda["lock_file"]
    path = project / name
    if not path.is_file():
        raise LockError(f"{name} is missing", hint="run `envbuild lock`")
    data = path.read_bytes()
    if sha256_bytes(data) != lock.conda["lock_digest"]:
        raise IntegrityError(f"{name} does not match the digest envbuild.lock records",
                             hint="it was edited or replaced after locking: run `envbuild lock`")
    return parse_conda_lock(data, file=name)


def build_project_image(project: Path, *, platform: str = "linux-64", no_cache: bool = False,
                        cache: Path | None = None, runner: Runner | None = None,
                        status: Status = lambda _: None) -> CondaBuildOutcome:
    from envbuild.build.wheels import default_cache_dir, fetch_wheels
    from envbuild.conda.image import build_conda_image
    from envbuild.generate.dockerfile import image_wheels, render_wheel_requirements
    from envbuild.lock.loaded import load_bundle

    bundle = load_bundle(project)
    if bundle.lock.image.base is None:
        raise LockError("envbuild.lock pins no base image",
                        hint="set [image] base in the spec and run `envbuild lock`")
    conda_lock = load_conda_lock(project)
    cache = cache or default_cache_dir()
    oci = OCI_PLATFORM[platform]
    pairs = image_wheels(bundle, oci)
    cached = fetch_wheels((w for _, w in pairs), cache, status=status)
    wheels = {w.name: cached[w.sha256] for _, w in pairs}
    context = project / CONTEXT_DIR / platform
    image_id = build_conda_image(
        conda_lock, base=bundle.lock.image.base, context=context, cache=cache / "conda",
        platform=platform, no_cache=no_cache, wheels=wheels,
        wheel_requirements=render_wheel_requirements(bundle, oci), runner=runner, status=status)
    return CondaBuildOutcome(image_id=image_id, platform=platform, context=context,
                             conda_packages=len(conda_lock.for_platform(platform)),
                             wheels=len(wheels))


def install_project(project: Path, prefix: Path, *, platform: str = "linux-64",
                    cache: Path | None = None, status: Status = lambda _: None) -> int:
    """The conda part alone, into a prefix on this machine (no pip part)."""
    from envbuild.build.wheels import default_cache_dir
    from envbuild.conda.install import install_prefix

    conda_lock = load_conda_lock(project)
    return install_prefix(conda_lock, platform, prefix,
                          cache=(cache or default_cache_dir()) / "conda",
                          image_prefix=str(prefix.resolve()), status=status)
