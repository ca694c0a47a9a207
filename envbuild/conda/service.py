"""The conda side of `envbuild lock` and `envbuild lock --check`: a thin shell."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from envbuild.conda import CONDA_LOCK_FILE
from envbuild.conda.pin import CondaPin
from envbuild.errors import SpecError
from envbuild.files import sha256_bytes, sha256_file
from envbuild.lock.bundle import EnvbuildLock
from envbuild.spec.model import CondaSpec
from envbuild.tools import Runner

Status = Callable[[str], None]


def model_conda_yaml(project: Path, model: Mapping[str, Any]) -> tuple[str, str]:
    """(where, text) of the locked model's conda.yaml, checked against the model pin."""
    import hashlib
    import tempfile

    from envbuild.errors import IntegrityError, LockError
    from envbuild.model.pin import ModelPin
    from envbuild.model.registry import download

    if not model:
        raise LockError('[model] environment = "conda" but no model is locked',
                        hint="check the [model] section")
    pin = ModelPin.from_dict(dict(model))
    where = f"{pin.pinned_uri}/conda.yaml"
    entry = next((f for f in pin.files if f.path == "conda.yaml"), None)
    if entry is None:
        raise LockError(f"{pin.pinned_uri} has no conda.yaml",
                        hint='log the model with a conda environment, or drop [model] '
                        'environment = "conda"')
    with tempfile.TemporaryDirectory(prefix="envbuild-model-conda-") as tmp:
        data = (download(project, pin.tracking_uri, pin.name, pin.version, Path(tmp))
                / "conda.yaml").read_bytes()
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise IntegrityError(f"{where} does not match the model digest in envbuild.lock",
                             hint="the registry's copy changed; re-run `envbuild lock`")
    return where, data.decode()


def read_environment(project: Path, conda: CondaSpec,
                     model: Mapping[str, Any] | None = None) -> Any:
    from envbuild.conda.environment import parse_environment

    if conda.file is None:
        where, text = model_conda_yaml(project, model or {})
        return parse_environment(text, file=where)
    path = project / conda.file
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read: {exc}", file=conda.file, hint="") from None
    return parse_environment(text, file=conda.file)


def environment_name(conda: CondaSpec, model: Mapping[str, Any] | None) -> str:
    """How conda-lock.yml and envbuild.lock name the environment's source."""
    if conda.file is not None:
        return conda.file
    return f"models:/{(model or {}).get('name')}/{(model or {}).get('version')}/conda.yaml"


def lock_conda(project: Path, conda: CondaSpec, *, runner: Runner | None = None,
               status: Status = lambda _: None, cache_dir: Path | None = None,
               model: Mapping[str, Any] | None = None,
               previous: EnvbuildLock | None = None) -> tuple[CondaPin, bytes]:
    """Solve the environment for every platform; return the pin and conda-lock.yml's bytes.

    conda-lock solves where a conda, mamba or micromamba executable exists; elsewhere py-rattler
    does. Either way the bytes come from conda-lock's writer, in the same canonical order.
    With `previous` (a re-lock without --upgrade), an unchanged conda request keeps its
    conda-lock.yml as it is: a change on the pip side never moves the conda pins.
    """
    from envbuild.conda.lockfile import render_conda_lock
    from envbuild.conda.solve import (
        build_lock,
        conda_executable,
        solve_with_conda_lock,
        solve_with_rattler,
    )

    env = read_environment(project, conda, model)
    source = environment_name(conda, model)
    channels = conda.channels or env.channels
    if not channels:
        raise SpecError("no channel: neither [conda].channels nor the environment file names one",
                        file=source, key="channels",
                        hint="add `channels:` to the environment file or [conda] channels")
    kept = _unchanged(project, conda, previous, source, tuple(channels), model)
    if kept is not None:
        return kept
    exe = conda_executable()
    if exe is not None and conda.file is not None:  # conda-lock reads a file in the project
        packages = solve_with_conda_lock(project, conda.environment, channels, conda.platforms,
                                         exe, runner or Runner(), status)
    else:
        packages = solve_with_rattler(env, channels, conda.platforms, status, cache_dir)
    lock = build_lock(env, environment=source, channels=channels,
                      platforms=conda.platforms, packages=packages)
    data = render_conda_lock(lock)
    pin = CondaPin(environment=source, lock_file=CONDA_LOCK_FILE,
                   lock_digest=sha256_bytes(data), channels=tuple(channels),
                   platforms=lock.platforms, packages=len(lock.packages))
    return pin, data


def _unchanged(project: Path, conda: CondaSpec, previous: EnvbuildLock | None, source: str,
               channels: tuple[str, ...], model: Mapping[str, Any] | None,
               ) -> tuple[CondaPin, bytes] | None:
    """The previous pin and bytes when nothing the conda solve reads has changed."""
    if previous is None or not previous.conda:
        return None
    pin = CondaPin.from_dict(dict(previous.conda))
    same_request = (pin.environment == source and pin.channels == channels
                    and pin.platforms == tuple(sorted(conda.platforms)))
    if conda.file is not None:
        same_env = previous.inputs.get(conda.file) == sha256_file(project / conda.file)
    else:
        same_env = dict(previous.model) == dict(model or {})
    path = project / pin.lock_file
    if not (same_request and same_env and path.is_file()):
        return None
    data = path.read_bytes()
    return (pin, data) if sha256_bytes(data) == pin.lock_digest else None


def pip_requirements(project: Path, conda: CondaSpec, requirements: tuple[str, ...],
                     model: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The spec's requirements plus the environment file's `pip:` list, normalised and sorted:
    the Python resolver locks both into pylock.toml, with hashes."""
    from packaging.requirements import InvalidRequirement, Requirement

    from envbuild.spec.requirements import normalise

    env = read_environment(project, conda, model)
    if not env.pip:
        return requirements
    parsed = [Requirement(r) for r in requirements]
    for i, text in enumerate(env.pip):
        try:
            parsed.append(Requirement(text))
        except InvalidRequirement as exc:
            raise SpecError(f"not a requirement: {exc}", file=environment_name(conda, model),
                            key=f"pip[{i}]", hint="write e.g. `requests==2.32.3`") from None
    return normalise(parsed)
