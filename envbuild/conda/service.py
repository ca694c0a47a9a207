"""The conda side of `envbuild lock` and `envbuild lock --check`: a thin shell."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from envbuild.conda import CONDA_LOCK_FILE
from envbuild.conda.pin import CondaPin
from envbuild.errors import SpecError
from envbuild.files import sha256_bytes, sha256_file
from envbuild.spec.model import CondaSpec
from envbuild.tools import Runner

Status = Callable[[str], None]


def conda_inputs(project: Path, conda: CondaSpec | None) -> dict[str, str]:
    """The environment file as an input of the lock (its digest goes to [inputs])."""
    if conda is None:
        return {}
    return {conda.environment: sha256_file(project / conda.environment)}


def read_environment(project: Path, conda: CondaSpec) -> Any:
    from envbuild.conda.environment import parse_environment

    path = project / conda.environment
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read: {exc}", file=conda.environment, hint="") from None
    return parse_environment(text, file=conda.environment)


def lock_conda(project: Path, conda: CondaSpec, *, runner: Runner | None = None,
               status: Status = lambda _: None, cache_dir: Path | None = None,
               ) -> tuple[CondaPin, bytes]:
    """Solve the environment for every platform; return the pin and conda-lock.yml's bytes.

    conda-lock solves where a conda, mamba or micromamba executable exists; elsewhere py-rattler
    does. Either way the bytes come from conda-lock's writer, in the same canonical order.
    """
    from envbuild.conda.lockfile import render_conda_lock
    from envbuild.conda.solve import (
        build_lock,
        conda_executable,
        solve_with_conda_lock,
        solve_with_rattler,
    )

    env = read_environment(project, conda)
    channels = conda.channels or env.channels
    if not channels:
        raise SpecError("no channel: neither [conda].channels nor the environment file names one",
                        file=conda.environment, key="channels",
                        hint="add `channels:` to the environment file or [conda] channels")
    exe = conda_executable()
    if exe is not None:
        packages = solve_with_conda_lock(project, conda.environment, channels, conda.platforms,
                                         exe, runner or Runner(), status)
    else:
        packages = solve_with_rattler(env, channels, conda.platforms, status, cache_dir)
    lock = build_lock(env, environment=conda.environment, channels=channels,
                      platforms=conda.platforms, packages=packages)
    data = render_conda_lock(lock)
    pin = CondaPin(environment=conda.environment, lock_file=CONDA_LOCK_FILE,
                   lock_digest=sha256_bytes(data), channels=tuple(channels),
                   platforms=lock.platforms, packages=len(lock.packages))
    return pin, data


def conda_stale_reasons(project: Path, conda: CondaSpec | None,
                        table: Mapping[str, Any]) -> list[str]:
    """What makes the conda part stale beyond [inputs]: a missing or edited conda-lock.yml, or
    a [conda] section added or removed since the lock."""
    if conda is None:
        return [f"{CONDA_LOCK_FILE}: [conda] removed from the spec"] if table else []
    if not table:
        return [f"{conda.environment}: [conda] is new since the lock"]
    pin = CondaPin.from_dict(dict(table))
    path = project / pin.lock_file
    if not path.is_file():
        return [f"{pin.lock_file}: missing"]
    if sha256_file(path) != pin.lock_digest:
        return [f"{pin.lock_file}: edited after locking"]
    return []


def pip_requirements(project: Path, conda: CondaSpec, requirements: tuple[str, ...],
                     ) -> tuple[str, ...]:
    """The spec's requirements plus the environment file's `pip:` list, normalised and sorted:
    the Python resolver locks both into pylock.toml, with hashes."""
    from packaging.requirements import InvalidRequirement, Requirement

    from envbuild.spec.requirements import normalise

    env = read_environment(project, conda)
    if not env.pip:
        return requirements
    parsed = [Requirement(r) for r in requirements]
    for i, text in enumerate(env.pip):
        try:
            parsed.append(Requirement(text))
        except InvalidRequirement as exc:
            raise SpecError(f"not a requirement: {exc}", file=conda.environment,
                            key=f"pip[{i}]", hint="write e.g. `requests==2.32.3`") from None
    return normalise(parsed)
