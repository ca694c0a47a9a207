"""Solving a conda environment per platform: conda-lock where a conda executable exists,
py-rattler's embedded solver otherwise. Both end in the same CondaLock (conda-lock's format).

rattler is imported here only: a project without [conda] never loads it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from envbuild.conda.environment import CondaEnvironment
from envbuild.conda.lockfile import CondaLock, CondaPackage
from envbuild.errors import LockError, NetworkError
from envbuild.tools import Runner, which

CONDA_EXECUTABLES = ("micromamba", "mamba", "conda")
Status = Callable[[str], None]


def conda_executable(find: Callable[[str], str | None] = which) -> str | None:
    """The first conda-compatible executable on PATH; None means: solve with rattler."""
    for name in CONDA_EXECUTABLES:
        if (path := find(name)) is not None:
            return path
    return None


def conda_lock_argv(*, conda_exe: str, environment: str, channels: Sequence[str],
                    platforms: Sequence[str], lockfile: str) -> list[str]:
    """`conda-lock lock` for the same channels and platforms (`--channel` overrides the file's)."""
    argv = ["conda-lock", "lock", "--conda", conda_exe, "--file", environment,
            "--kind", "lock", "--lockfile", lockfile]
    for channel in channels:
        argv += ["--channel", channel]
    for platform in sorted(platforms):
        argv += ["--platform", platform]
    return argv


def _channel_source(channel: str) -> str:
    return channel.rstrip("/")


_NO_CANDIDATES = re.compile(r"No candidates were found for ([^\n]+?)( \*)?\.?$", re.MULTILINE)


def _solver_error(message: str, platform: str) -> LockError:
    first = message.strip().splitlines()[-1] if message.strip() else message
    missing = _NO_CANDIDATES.search(message)
    if missing:
        return LockError(f"conda: no package matches {missing.group(1)!r} for {platform} in "
                         "the channels",
                         hint=f"check the name and version, and that a channel carries it for "
                         f"{platform} (or noarch)")
    return LockError(f"conda: the environment is unsatisfiable for {platform}: "
                     f"{' '.join(message.split())[:400]}",
                     hint=f"relax the constraints in the environment file ({first[:80]})")


def _gateway_error(message: str, platform: str) -> NetworkError:
    flat = " ".join(message.split())
    url = re.search(r"(https?|file)://\S+", flat)
    where = url.group(0).rstrip(")") if url else "a channel"
    return NetworkError(f"conda: cannot read the channel for {platform}: {where}: {flat[-160:]}",
                        hint="check the channel URL and that it serves repodata.json per subdir")


def solve_with_rattler(env: CondaEnvironment, channels: Sequence[str],
                       platforms: Sequence[str], status: Status = lambda _: None,
                       cache_dir: Path | None = None) -> list[CondaPackage]:
    """Solve once per platform against the channels' repodata; every record keeps its url,
    sha256 and md5. No virtual packages: the lock must not depend on the machine solving it."""
    import asyncio

    import rattler
    from rattler.exceptions import GatewayError, SolverError

    gateway = rattler.Gateway(cache_dir=cache_dir) if cache_dir else None
    sources = [_channel_source(c) for c in channels]
    packages: list[CondaPackage] = []
    for platform in sorted(platforms):
        status(f"solving {len(env.specs)} conda specs for {platform} with rattler")
        try:
            records = asyncio.run(rattler.solve(
                sources=sources, specs=list(env.specs),
                platforms=[rattler.Subdir(platform), rattler.Subdir("noarch")],
                virtual_packages=[], gateway=gateway))
        except SolverError as exc:
            raise _solver_error(str(exc), platform) from None
        except GatewayError as exc:
            raise _gateway_error(str(exc), platform) from None
        for r in records:
            if r.sha256 is None or r.md5 is None:
                raise LockError(f"conda: {r.name.normalized} ({platform}) has no sha256 or md5 "
                                "in the channel's repodata",
                                hint="re-index the channel: every package needs both hashes")
            packages.append(CondaPackage(
                name=r.name.normalized, version=str(r.version), build=str(r.build),
                platform=platform, url=str(r.url), sha256=r.sha256.hex(), md5=r.md5.hex(),
                depends=tuple(sorted(r.depends)),
            ))
    return packages


def solve_with_conda_lock(project: Path, environment: str, channels: Sequence[str],
                          platforms: Sequence[str], conda_exe: str, runner: Runner,
                          status: Status = lambda _: None) -> list[CondaPackage]:
    """conda-lock's own solve; its lock file is read back and re-rendered by envbuild, so both
    paths write the same canonical bytes for the same packages."""
    import tempfile

    from envbuild.conda.lockfile import parse_conda_lock

    with tempfile.TemporaryDirectory(prefix="envbuild-conda-lock-") as tmp:
        out = Path(tmp) / "conda-lock.yml"
        status(f"solving with conda-lock ({Path(conda_exe).name})")
        runner.run(conda_lock_argv(conda_exe=conda_exe, environment=environment,
                                   channels=channels, platforms=platforms, lockfile=str(out)),
                   cwd=project, what="conda-lock")
        # conda-lock also locks the pip: list; envbuild keeps that in pylock.toml instead.
        return list(parse_conda_lock(out.read_bytes(), drop_pip=True).packages)


def build_lock(env: CondaEnvironment, *, environment: str, channels: Sequence[str],
               platforms: Sequence[str], packages: Sequence[CondaPackage]) -> CondaLock:
    """Pure: the solved packages in, the lock out, sorted by (platform, name)."""
    missing = sorted(set(platforms) - {p.platform for p in packages})
    if missing and env.dependencies:
        raise LockError(f"conda: nothing solved for {', '.join(missing)}",
                        hint="check the channels carry packages for every platform")
    return CondaLock(channels=tuple(channels), platforms=tuple(sorted(platforms)),
                     specs=env.specs, sources=(environment,),
                     packages=tuple(sorted(packages, key=lambda p: (p.platform, p.name))))
