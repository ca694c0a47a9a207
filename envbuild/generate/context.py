"""`envbuild generate`: write the image bundle directory (the build context). The shell part.

The bundle directory (default `<project>/.envbuild/bundle/`) holds everything a build reads:

    Dockerfile  .dockerignore  sbom.cdx.json
    wheels/     the platform's locked wheels (hard links into the verified wheel cache)
                and wheels/requirements.txt
    code/       copies of the spec's [image] code paths
    model/      the locked model's files (when the lock pins a model), copied from the
                project's model/ after `envbuild model fetch`'s digest check

Nothing in it depends on where the project lives: no absolute path, no time, no user, and file
modes are normalised (0644, or 0755 for executables and directories), so two copies of a
project in different places give the same context and the same image. Re-running changes no
byte; files that no longer belong are removed.
"""

from __future__ import annotations

import filecmp
import os
import platform as host
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envbuild.errors import EnvbuildError, IntegrityError, SpecError
from envbuild.files import write_all_atomic
from envbuild.generate.dockerfile import (
    SBOM_FILE,
    DockerOptions,
    image_wheels,
    render_dockerfile,
    render_dockerignore,
    render_wheel_requirements,
    target_for,
)
from envbuild.generate.sbom import render_sbom
from envbuild.generate.sbom_cache import cached_sbom
from envbuild.lock.loaded import Bundle, load_bundle
from envbuild.lock.pylock import LockedPackage, Wheel
from envbuild.tools import Runner

Status = Callable[[str], None]
BUNDLE_DIR = Path(".envbuild") / "bundle"
_SKIP_NAMES = {"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".envbuild"}
_MACHINE_PLATFORM = {"x86_64": "linux/amd64", "amd64": "linux/amd64",
                     "aarch64": "linux/arm64", "arm64": "linux/arm64"}


def host_platform() -> str:
    machine = host.machine().lower()
    return _MACHINE_PLATFORM.get(machine, f"linux/{machine}")


def check_platform(requested: str) -> None:
    """Images are built for the host's platform: another one needs emulation (qemu binfmt)."""
    here = host_platform()
    if requested != here:
        raise EnvbuildError(
            f"cannot build a {requested} image on this {here} machine: RUN steps would need "
            "CPU emulation (qemu-user-static with binfmt_misc), which is not set up here",
            hint=f"build on a {requested} machine, or pass --platform {here}",
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class GenerateOutcome:
    directory: Path
    platform: str
    wheels: int
    code_files: int
    model_files: int
    changed: tuple[str, ...]  # paths (relative to the bundle directory) whose bytes changed


def source_commit(project: Path, runner: Runner) -> str | None:
    """HEAD of the git checkout holding the project, or None outside git."""
    if shutil.which("git") is None:
        return None
    result = runner.run(["git", "-C", str(project), "rev-parse", "--verify", "-q", "HEAD"],
                        check=False)
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and len(commit) == 40 else None


def _code_files(project: Path, paths: tuple[str, ...]) -> dict[str, Path]:
    """Relative path inside code/ -> source file, for every file under the code paths."""
    out: dict[str, Path] = {}
    root = project.resolve()
    for entry in sorted(paths):
        source = (project / entry).resolve()
        if root != source and root not in source.parents:
            raise SpecError(f"{entry} points outside the project", file="envbuild.toml",
                            key="image.code", hint="list paths inside the project")
        rel_entry = source.relative_to(root)
        if source.is_file():
            out[rel_entry.as_posix()] = source
            continue
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_NAMES)
            for name in sorted(filenames):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(dirpath) / name
                if path.is_file():
                    out[path.relative_to(root).as_posix()] = path
    return out


def _model_files(project: Path, bundle: Bundle, status: Status) -> dict[str, Path]:
    """Relative path inside model/ -> checked source file; empty when the lock pins no model.

    The files come from the project's model/ directory, which `fetch_model` fills from the
    registry (or leaves alone when it already holds exactly the locked files), so the image
    gets the bytes the lock's model digest names, or generate stops with the mismatch.
    """
    if not bundle.lock.model:
        return {}
    from envbuild.model.files import list_model_files
    from envbuild.model.package import fetch_model

    root, _ = fetch_model(project, status=status)
    return {f.path: root / f.path for f in list_model_files(root)}


def _copy_if_changed(source: Path, dest: Path, mode: int) -> bool:
    """Copy source to dest (atomically, with `mode`) unless dest already has its bytes.

    A copy, not a hard link: the bundle normalises modes, and chmod on a link would change
    the project's own file too."""
    same_size = dest.is_file() and dest.stat().st_size == source.stat().st_size
    if same_size and filecmp.cmp(source, dest, shallow=False):
        os.chmod(dest, mode)
        return False
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    shutil.copyfile(source, tmp)
    os.chmod(tmp, mode)
    os.replace(tmp, dest)
    return True


def _link_or_copy(source: Path, dest: Path) -> bool:
    """Put the cached wheel at dest (hard link, else copy); False when it is already there."""
    if dest.exists():
        if dest.samefile(source):
            return False
        if dest.stat().st_size == source.stat().st_size and dest.read_bytes() == source.read_bytes():
            return False
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o444)
    os.replace(tmp, dest)
    return True


def _prune(directory: Path, keep: set[str]) -> list[str]:
    """Remove files under directory that are not in keep (relative paths); then empty dirs."""
    removed = []
    for dirpath, dirnames, filenames in os.walk(directory, topdown=False):
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(directory).as_posix()
            if rel not in keep:
                path.unlink()
                removed.append(rel)
        for name in dirnames:
            sub = Path(dirpath) / name
            if not any(sub.iterdir()):
                sub.rmdir()
    return removed


def render_bundle_files(bundle: Bundle, options: DockerOptions,
                        sbom: bytes | None = None) -> dict[str, bytes]:
    """Every generated (non-copied) file of the bundle directory. Pure. `sbom`: the SBOM
    already rendered for this bundle and platform (sbom_cache), else it is rendered here."""
    return {
        "Dockerfile": render_dockerfile(bundle, options),
        ".dockerignore": render_dockerignore(),
        SBOM_FILE: sbom if sbom is not None else render_sbom(bundle, options.platform),
        "wheels/requirements.txt": render_wheel_requirements(bundle, options.platform),
    }


def generate_bundle(
    project: Path,
    *,
    out: Path | None = None,
    platform: str | None = None,
    runner: Runner | None = None,
    cache: Path | None = None,
    status: Status = lambda _: None,
    commit: str | None = None,
) -> GenerateOutcome:
    from envbuild.build.wheels import default_cache_dir, fetch_wheels
    from envbuild.conda.targets import refuse_conda

    runner = runner or Runner()
    bundle = load_bundle(project)
    refuse_conda(bundle.lock, "docker")
    platform = platform or host_platform()
    target_for(bundle, platform)
    directory = out if out is not None else project / BUNDLE_DIR
    options = DockerOptions(platform=platform,
                            source_commit=commit if commit is not None
                            else source_commit(project, runner))
    render_dockerfile(bundle, options)  # fails (no base, no such platform) before any work
    cache = cache or default_cache_dir()
    generated = render_bundle_files(bundle, options,
                                    sbom=cached_sbom(bundle, options.platform, cache))
    wheels = image_wheels(bundle, platform)
    cached = fetch_wheels((w for _, w in wheels), cache, status=status)
    code = _code_files(project, bundle.lock.image.code)
    model = _model_files(project, bundle, status)

    status(f"writing the bundle directory {directory}")
    directory.mkdir(parents=True, exist_ok=True)
    changed: list[str] = []
    files: dict[Path, bytes] = {}
    for rel, data in generated.items():
        files[directory / rel] = data
    for rel, source in code.items():
        files[directory / "code" / rel] = source.read_bytes()
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
    before = {p: (p.read_bytes() if p.is_file() else None) for p in files}
    write_all_atomic(files)
    changed += [p.relative_to(directory).as_posix() for p, data in files.items()
                if before[p] != data]
    for rel, source in code.items():
        executable = source.stat().st_mode & 0o111
        os.chmod(directory / "code" / rel, 0o755 if executable else 0o644)
    for _, wheel in wheels:
        dest = directory / "wheels" / wheel.name
        if _link_or_copy(cached[wheel.sha256], dest):
            changed.append(f"wheels/{wheel.name}")
    for rel, source in model.items():
        dest = directory / "model" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if _copy_if_changed(source, dest, 0o644):
            changed.append(f"model/{rel}")
    keep = {p.relative_to(directory).as_posix() for p in files}
    keep |= {f"wheels/{w.name}" for _, w in wheels}
    keep |= {f"model/{rel}" for rel in model}
    changed += _prune(directory, keep)
    for dirpath, _, _ in os.walk(directory):
        os.chmod(dirpath, 0o755)
    _check_wheels(directory, wheels)
    return GenerateOutcome(directory=directory, platform=platform, wheels=len(wheels),
                           code_files=len(code), model_files=len(model), changed=tuple(sorted(changed)))


def _check_wheels(directory: Path, wheels: tuple[tuple[LockedPackage, Wheel], ...]) -> None:
    """Every linked wheel is a regular file of the size the lock records (a cheap guard
    against a damaged cache; the bytes were hashed when they entered it)."""
    for _, wheel in wheels:
        path = directory / "wheels" / wheel.name
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or (wheel.size is not None and info.st_size != wheel.size):
            raise IntegrityError(f"{path} does not match the lock (size or type)",
                                 hint="delete the wheel cache entry and run again")
