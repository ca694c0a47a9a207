"""`envbuild verify`: a list of named checks, each pass or fail, run in order.

This module owns the image check (`--rebuild`): rebuild the bundle from scratch (no layer
cache) and compare the image id with the one `envbuild build` recorded. On a mismatch it
exports both images and reports, per differing layer, which files differ and how (content,
mode, owner, time). Other checks (lock freshness, data, model) add themselves as more `Check`
entries; each failing kind has its own exit code.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envbuild.build import builders as b
from envbuild.build.diff import ImageDiff, diff_images, read_layout, render_diff
from envbuild.build.record import RECORD_FILE
from envbuild.build.service import (
    _has_image,
    check_base,
    read_record,
    require_builder,
    run_build,
)
from envbuild.errors import EnvbuildError, LockError
from envbuild.lock.loaded import load_bundle
from envbuild.tools import Runner

Status = Callable[[str], None]


class NotReproducibleError(EnvbuildError):
    """A rebuild gave another image digest than the recorded build."""

    exit_code = 9


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    summary: str
    details: tuple[str, ...] = ()
    error: EnvbuildError | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RebuildResult:
    recorded: str
    rebuilt: str
    diff: ImageDiff | None  # None when equal, or when the recorded image is gone

    @property
    def same(self) -> bool:
        return self.recorded == self.rebuilt


Check = Callable[[], CheckResult]


def run_checks(checks: list[tuple[str, Check]]) -> list[CheckResult]:
    """Run every check (a failing one does not stop the others) and collect the results."""
    results = []
    for name, check in checks:
        try:
            results.append(check())
        except EnvbuildError as exc:
            results.append(CheckResult(name=name, ok=False, summary=exc.message, error=exc))
    return results


def export_layout(builder: str, ref: str, dest: Path, runner: Runner, driver: str | None) -> Path:
    runner.run(b.export_argv(builder, ref, f"oci:{dest}", driver), what="skopeo copy (OCI layout)")
    return dest


def rebuild_and_compare(
    project: Path,
    *,
    builder: str = "buildah",
    platform: str | None = None,
    runner: Runner | None = None,
    status: Status = lambda _: None,
) -> RebuildResult:
    from envbuild.generate.context import check_platform, generate_bundle, host_platform

    runner = runner or Runner()
    platform = platform or host_platform()
    check_platform(platform)
    bundle = load_bundle(project)
    record = read_record(project)
    key = f"{builder} {platform}"
    if record is None or key not in record.builds:
        raise LockError(f"no {builder} build for {platform} in {RECORD_FILE}: nothing to compare",
                        hint=f"run `envbuild build --builder {builder}` first, and commit "
                        f"{RECORD_FILE}")
    if record.bundle != bundle.lock.bundle_id:
        raise LockError(f"{RECORD_FILE} records bundle {record.bundle[7:19]}, the lock is "
                        f"{bundle.lock.short_id}", hint="run `envbuild build` for this lock")
    recorded = record.builds[key]
    with tempfile.TemporaryDirectory(prefix="envbuild-verify-") as tmp:
        generated = generate_bundle(project, out=Path(tmp) / "bundle", platform=platform,
                                    runner=runner, status=status)
        return compare_rebuild(generated.directory, recorded=recorded.image_id, builder=builder,
                               base=recorded.base, platform=platform, runner=runner,
                               status=status)


def compare_rebuild(
    context: Path,
    *,
    recorded: str,
    builder: str,
    base: str,
    platform: str = "linux/amd64",
    runner: Runner | None = None,
    status: Status = lambda _: None,
) -> RebuildResult:
    """Rebuild `context` without layer cache; diff against `recorded` when the ids differ."""
    runner = runner or Runner()
    buildx = require_builder(builder, runner)
    driver = b.storage_driver()
    check_base(base, builder, runner, driver)
    with tempfile.TemporaryDirectory(prefix="envbuild-verify-") as tmp:
        opts = b.BuildOptions(builder=builder, context=str(context), platform=platform,
                              base=base, iidfile=f"{tmp}/iid", cache=False,
                              storage_driver=driver, buildx=buildx)
        status(f"rebuilding from scratch with {builder} (no layer cache)")
        rebuilt = run_build(opts, runner)
        if rebuilt == recorded:
            return RebuildResult(recorded=recorded, rebuilt=rebuilt, diff=None)
        diff = None
        try:
            if _has_image(builder, recorded, runner, driver):
                status("the digests differ: exporting both images to compare them file by file")
                old = read_layout(export_layout(builder, recorded, Path(tmp) / "old", runner,
                                                driver))
                new = read_layout(export_layout(builder, rebuilt, Path(tmp) / "new", runner,
                                                driver))
                diff = diff_images(old, new)
        finally:
            runner.run(b.remove_argv(builder, rebuilt, driver), check=False)
        return RebuildResult(recorded=recorded, rebuilt=rebuilt, diff=diff)


def rebuild_check(project: Path, *, builder: str, platform: str | None, runner: Runner | None,
                  status: Status) -> CheckResult:
    result = rebuild_and_compare(project, builder=builder, platform=platform, runner=runner,
                                 status=status)
    if result.same:
        return CheckResult(name="rebuild", ok=True,
                           summary=f"the rebuild gave the recorded image {result.recorded}")
    if result.diff is None:
        details: tuple[str, ...] = (("the recorded image is no longer in local storage: only the "
                                    "digests can be compared"),)
    else:
        details = tuple(render_diff(result.diff))
    error = NotReproducibleError(
        f"the rebuild gave {result.rebuilt}, the record says {result.recorded}",
        hint="the lines above name each differing layer and file; make that step "
        "deterministic (fixed times, sorted output, no random or host-specific content)",
    )
    return CheckResult(name="rebuild", ok=False, summary=error.message, details=details,
                       error=error)
