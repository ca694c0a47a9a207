"""`envbuild lock` and `envbuild lock --check`: the shell around the pure lock model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.errors import EnvbuildError, LockError, StaleLockError
from envbuild.files import sha256_file, write_all_atomic
from envbuild.lock.bundle import (
    LOCK_FILE,
    PYLOCK_FILE,
    REQUIREMENTS_FILE,
    REQUIREMENTS_LOCK_FILE,
    EnvbuildLock,
    ImagePin,
    parse_lock,
)
from envbuild.spec import Spec, load_spec
from envbuild.spec.sources import requirement_files
from envbuild.tools import Runner

Status = Callable[[str], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class LockOutcome:
    lock: EnvbuildLock
    resolved: bool  # False: inputs unchanged, existing pins kept, nothing resolved
    written: tuple[str, ...]  # files whose bytes changed
    notes: tuple[str, ...]  # things the user should know (e.g. no base image)


def resolve(backend: str, request: Any, runner: Runner) -> list[dict[str, Any]]:
    """The resolver backends, imported only when something must be resolved."""
    from envbuild.lock.resolvers import resolve as run_backend

    return run_backend(backend, request, runner)


def input_digests(project: Path, spec: Spec) -> dict[str, str]:
    """sha256 of the spec and of every file the requirements come from (includes followed).

    Finding the files parses no requirement, so a no-change run stays cheap."""
    files = {spec.file, *requirement_files(project, spec),
             *([spec.conda.file] if spec.conda and spec.conda.file else [])}
    return {f: sha256_file(project / f) for f in sorted(files)}


def _requirements(project: Path, spec: Spec) -> tuple[str, ...]:
    """The normalised requirements. A [conda] spec may name no requirement file: its pip part
    is the environment file's `pip:` list, added when resolving."""
    if not spec.requirements and spec.conda is not None:
        return ()
    from envbuild.spec.requirements import read_requirement_set  # packaging's parser: slow import

    return read_requirement_set(project, spec).requirements


def read_lock(project: Path) -> EnvbuildLock | None:
    path = project / LOCK_FILE
    if not path.exists():
        return None
    return parse_lock(path.read_text(encoding="utf-8"))


def _file_digest_or_none(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None


def stale_reasons(project: Path, lock: EnvbuildLock, inputs: dict[str, str]) -> list[str]:
    """Every way the files on disk differ from what the lock recorded, one line each."""
    reasons = []
    for path in sorted(set(inputs) | set(lock.inputs)):
        if path not in lock.inputs:
            reasons.append(f"{path}: new input since the lock")
        elif path not in inputs:
            reasons.append(f"{path}: no longer an input")
        elif inputs[path] != lock.inputs[path]:
            reasons.append(f"{path}: changed since the lock")
    pinned = [(lock.python.lock_file, lock.python.lock_digest),
              (lock.python.requirements_file, lock.python.requirements_digest)]
    if lock.conda:  # conda-lock.yml, pinned in the [conda] table
        pinned.append((lock.conda["lock_file"], lock.conda["lock_digest"]))
    for name, digest in pinned:
        actual = _file_digest_or_none(project / name)
        if actual is None:
            reasons.append(f"{name}: missing")
        elif actual != digest:
            reasons.append(f"{name}: edited after locking")
    return reasons


def check_project(project: Path) -> EnvbuildLock:
    """The CI staleness gate: raise StaleLockError naming every changed file. Writes nothing."""
    spec = load_spec(project)
    lock = read_lock(project)
    if lock is None:
        raise StaleLockError(f"no {LOCK_FILE} in {project}", changed=[LOCK_FILE],
                             hint="run `envbuild lock` and commit the files it writes")
    reasons = stale_reasons(project, lock, input_digests(project, spec))
    if spec.model is not None or lock.model:
        # Asks the model registry only when the spec names an alias (aliases move).
        from envbuild.model.lock import model_stale_reasons

        reasons += model_stale_reasons(project, spec.model, lock.model)
    if reasons:
        raise StaleLockError(
            "the lock is stale: " + "; ".join(reasons),
            changed=[r.split(":", 1)[0] for r in reasons],
            hint="run `envbuild lock` and commit the result",
        )
    return lock


def _pin_base_image(spec: Spec, previous: EnvbuildLock | None, upgrade: bool, status: Status) -> ImagePin:
    pin = _image_pin(spec, base=None)
    base_ref = spec.image.base
    if base_ref is None:
        return pin
    if previous and previous.image.base_ref == base_ref and previous.image.base and not upgrade:
        return _image_pin(spec, base=previous.image.base)
    import httpx

    from envbuild.lock.registry import ImageRef, resolve_digest

    try:
        ref = ImageRef.parse(base_ref)
    except ValueError as exc:
        raise LockError(f"image.base: {exc}", hint="write it as registry/repository:tag") from None
    status(f"resolving base image {base_ref}")
    timeout = httpx.Timeout(15.0, connect=5.0)
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        digest = resolve_digest(ref, client=client)
    return _image_pin(spec, base=ref.pinned(digest))


def _image_pin(spec: Spec, *, base: str | None) -> ImagePin:
    """The [image] table of the lock: the pinned base plus how the image runs."""
    image = spec.image
    return ImagePin(name=spec.image_name, base_ref=image.base, base=base, cmd=image.cmd,
                    port=image.port, healthcheck=image.healthcheck, code=tuple(sorted(image.code)))


def lock_project(
    project: Path,
    *,
    resolver: str | None = None,
    upgrade: bool = False,
    upgrade_packages: tuple[str, ...] = (),
    runner: Runner | None = None,
    status: Status = lambda _: None,
) -> LockOutcome:
    spec = load_spec(project)
    inputs = input_digests(project, spec)
    notes = []
    try:
        previous = read_lock(project)
    except EnvbuildError as exc:
        previous = None  # a damaged or hand-edited lock is replaced by a fresh one
        notes.append(f"replacing {LOCK_FILE}: {exc.message}")
    backend = resolver or (previous.resolver if previous else "uv")
    pinned = set((previous.data.get("refs") or {}) if previous else {})
    if unpinned := [p for p in spec.data.paths if p not in pinned]:
        notes.append(f"data paths not pinned yet: {', '.join(unpinned)}; "
                     "run `envbuild data add` to hash them into the lock")
    if spec.image.base is None:
        notes.append("no image.base in the spec: locked the Python side only; image targets "
                     "need a base image")

    model = dict(previous.model) if previous else {}
    if spec.model is not None or model:
        # Before the Python resolve: a wrong model name fails in seconds. mlflow is imported
        # only when a [model] section names an alias, or a model not locked yet.
        from envbuild.model.lock import lock_model

        model = lock_model(project, spec.model, model, status)

    fresh = (previous is not None and not upgrade and not upgrade_packages
             and backend == previous.resolver and not stale_reasons(project, previous, inputs))
    if (fresh and previous is not None and spec.conda is not None and spec.conda.file is None
            and model != dict(previous.model)):
        fresh = False  # the model's conda.yaml moved with the model: re-lock everything below
    if fresh:
        assert previous is not None
        if model == dict(previous.model):
            return LockOutcome(lock=previous, resolved=False, written=(), notes=tuple(notes))
        # Only the model moved (e.g. its alias): the Python pins stay, envbuild.lock is rewritten.
        from dataclasses import replace

        from envbuild.files import write_atomic
        from envbuild.lock.bundle import render_lock

        relocked = replace(previous, model=model)
        write_atomic(project / LOCK_FILE, render_lock(relocked))
        notes.append(f"model: re-pinned {model.get('uri')} to version {model.get('version')} "
                     f"(was {previous.model.get('version', 'not locked')}); Python pins kept")
        return LockOutcome(lock=relocked, resolved=True, written=(LOCK_FILE,), notes=tuple(notes))

    # Resolving needs the heavy modules; a no-change run (above) never imports them.
    from envbuild.lock.assemble import assemble
    from envbuild.lock.resolvers import ResolveRequest

    # The derived requirements.txt must never overwrite a requirements.txt the user wrote.
    req_name = REQUIREMENTS_LOCK_FILE if REQUIREMENTS_FILE in inputs else REQUIREMENTS_FILE
    pylock_path = project / PYLOCK_FILE
    req_path = project / req_name
    keep = previous is not None and not upgrade
    requirements = _requirements(project, spec)
    if spec.conda is not None:  # the environment file's pip: list joins the Python lock
        from envbuild.conda.service import pip_requirements

        requirements = pip_requirements(project, spec.conda, requirements, model)
    request = ResolveRequest(
        requirements=requirements,
        python=spec.python,
        index_url=spec.index_url,
        upgrade=upgrade,
        upgrade_packages=upgrade_packages,
        previous_pylock=pylock_path.read_text() if keep and pylock_path.is_file() else None,
        previous_requirements=req_path.read_text() if keep and req_path.is_file() else None,
    )
    # The registry first: a typo in image.base fails in a second, not after a long resolve.
    image = _pin_base_image(spec, previous, upgrade, status)
    status(f"resolving {len(requirements)} requirements with {backend} for "
           f"{', '.join(spec.platforms)} (Python {spec.python})")
    conda_files: dict[str, bytes] = {}
    if spec.conda is not None:
        # Before the Python resolve: an unreachable channel fails in seconds.
        from envbuild.conda.service import lock_conda

        conda_pin, conda_bytes = lock_conda(project, spec.conda, runner=runner, status=status,
                                              model=model, previous=None if upgrade else previous)
        conda_files[conda_pin.lock_file] = conda_bytes
    candidates = resolve(backend, request, runner or Runner())
    lock, rendered = assemble(
        name=spec.name, python=spec.python, platforms=spec.platforms, glibc=spec.glibc,
        index_url=spec.index_url, candidates=candidates, image=image, inputs=inputs,
        resolver=backend, requirements_file=req_name,
        # The data table is pinned by its own command; a re-lock keeps it.
        model=model, data=previous.data if previous else None,
        nix=spec.nix.to_dict() if spec.nix else None,
    )
    if spec.conda is not None:
        from dataclasses import replace

        from envbuild.lock.bundle import render_lock

        lock = replace(lock, conda=conda_pin.to_dict())  # conda-lock.yml's digest: bundle id
        rendered = {**conda_files, **rendered, LOCK_FILE: render_lock(lock)}
    files = {project / name: data for name, data in rendered.items()}
    written = tuple(p.name for p, data in files.items()
                    if not p.is_file() or p.read_bytes() != data)
    write_all_atomic(files)  # envbuild.lock last: it commits the change
    return LockOutcome(lock=lock, resolved=True, written=written, notes=tuple(notes))
