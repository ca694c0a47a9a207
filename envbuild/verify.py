"""`envbuild verify`, the CI gate: the checks that run without a rebuild, in order.

1. lock       the lock is fresh against the spec and requirement files   (exit 5)
2. generated  generated files on disk equal what the lock generates now  (exit 10)
3. data       data refs match their locked digests (stat cache: unchanged files are not read)
                                                                          (exit 11)
4. model      the model's files match the locked model digest            (exit 12)
5. rebuild    (with --rebuild) the image digest repeats                   (exit 9, envbuild.build)
Each failing kind has its own exit code, so CI can tell them apart.
"""

from __future__ import annotations

from pathlib import Path

from envbuild.build.verify import CheckResult
from envbuild.errors import EnvbuildError, IntegrityError


class GeneratedDriftError(EnvbuildError):
    """A generated file no longer equals what the lock generates."""

    exit_code = 10


class DataMismatchError(EnvbuildError):
    """A data ref's bytes do not match the lock."""

    exit_code = 11


class ModelMismatchError(EnvbuildError):
    """The model's files do not match the locked model digest."""

    exit_code = 12


def lock_check(project: Path) -> CheckResult:
    from envbuild.lock.service import check_project

    lock = check_project(project)
    return CheckResult(name="lock", ok=True, summary=f"fresh (bundle {lock.short_id})")


def _differing(expected: dict[Path, bytes]) -> list[str]:
    return sorted(str(p) for p, data in expected.items()
                  if not p.is_file() or p.read_bytes() != data)


def generated_check(project: Path) -> CheckResult:
    """Compare the generated files that exist (image bundle, flake) with a fresh rendering."""
    from envbuild.lock.loaded import load_bundle

    bundle = load_bundle(project)
    expected: dict[Path, bytes] = {}
    checked = []
    bundle_dir = project / ".envbuild" / "bundle"
    if (bundle_dir / "Dockerfile").is_file():
        from envbuild.build.wheels import default_cache_dir
        from envbuild.generate.context import (
            host_platform,
            render_bundle_files,
            source_commit,
        )
        from envbuild.generate.dockerfile import DockerOptions
        from envbuild.generate.sbom_cache import cached_sbom
        from envbuild.tools import Runner

        options = DockerOptions(platform=host_platform(),
                                source_commit=source_commit(project, Runner()))
        sbom = cached_sbom(bundle, options.platform, default_cache_dir())
        for rel, data in render_bundle_files(bundle, options, sbom=sbom).items():
            expected[bundle_dir / rel] = data
        checked.append("image bundle")
    flake = project / "flake.nix"
    from envbuild.generate.nix import GENERATED_MARK

    if flake.is_file() and flake.read_bytes().startswith(GENERATED_MARK.encode()):
        from envbuild.generate.nix import render_flake
        from envbuild.generate.nix_inputs import store_paths
        from envbuild.generate.nix_write import _listing, options_from_lock

        paths = store_paths(bundle.lock.data, bundle.lock.model, _listing(project))
        for rel, data in render_flake(bundle, paths, options_from_lock(bundle.lock.nix)).items():
            expected[project / rel] = data
        checked.append("flake")
    if not checked:
        return CheckResult(name="generated", ok=True,
                           summary="nothing generated yet (no image bundle, no flake)")
    if differing := _differing(expected):
        names = [str(Path(p).relative_to(project)) for p in differing]
        raise GeneratedDriftError(
            f"generated files differ from what the lock generates: {', '.join(names)}",
            hint="regenerate them (`envbuild generate`, `envbuild generate --target nix`) "
            "instead of editing them by hand",
        )
    return CheckResult(name="generated", ok=True,
                       summary=f"{' and '.join(checked)} equal what the lock generates")


def data_check(project: Path) -> CheckResult:
    from envbuild.data.service import DataContext, check, read_table

    if not read_table(project).refs:
        return CheckResult(name="data", ok=True, summary="no data refs in the lock")
    outcome = check(DataContext.open(project), rehash=False)
    bad = [s for s in outcome.states if not s.ok]
    if bad:
        detail = "; ".join(
            f"{s.ref.path}: {s.state}" + (f" ({', '.join(f'{p} {c}' for p, c in s.changes[:3])})"
                                          if s.changes else "") for s in bad)
        raise DataMismatchError(f"data does not match the lock: {detail}",
                                hint="restore it with `envbuild data checkout`, or pin the new "
                                "bytes with `envbuild data add`")
    return CheckResult(name="data", ok=True,
                       summary=f"{len(outcome.states)} ref(s) match; {outcome.hashed} file(s) "
                       "re-hashed")


def model_check(project: Path) -> CheckResult:
    """The model directory the image and flake take the model from, checked file by file."""
    from envbuild.lock.loaded import load_bundle

    bundle = load_bundle(project)
    if not bundle.lock.model:
        return CheckResult(name="model", ok=True, summary="no model in the lock")
    from envbuild.generate.bento import model_pin
    from envbuild.model.files import check_model_files
    from envbuild.model.package import MODEL_DIR

    pin = model_pin(bundle)
    # The project's model/ (what `model fetch` put there) and the image bundle's copy of it
    # (what the next build puts in the image): both must hold exactly the locked files.
    roots = [r for r in (project / MODEL_DIR, project / ".envbuild" / "bundle" / "model")
             if r.is_dir()]
    if not roots:
        return CheckResult(name="model", ok=True,
                           summary=f"{pin.pinned_uri}: not fetched here (`envbuild model fetch` "
                           "puts it in model/; packaging checks it on download)")
    for root in roots:
        try:
            check_model_files(root, pin)
        except IntegrityError as exc:
            where = root.relative_to(project).as_posix()
            raise ModelMismatchError(f"{where}/: {exc.message}",
                                     hint="fetch it again with `envbuild model fetch` (then "
                                     "`envbuild generate`), or re-lock if the registered model "
                                     "really changed") from exc
    return CheckResult(name="model", ok=True,
                       summary=f"{pin.pinned_uri}: {len(pin.files)} file(s) match {pin.digest[:19]}")
