"""From resolved candidates to the bytes of every lock file. Pure: no files, no network."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envbuild.files import sha256_bytes
from envbuild.lock.bundle import (
    LOCK_FILE,
    PYLOCK_FILE,
    REQUIREMENTS_FILE,
    EnvbuildLock,
    ImagePin,
    PythonPin,
    render_lock,
)
from envbuild.lock.platforms import targets_for
from envbuild.lock.pylock import render_pylock, render_requirements_txt, select


def assemble(
    *,
    name: str,
    python: str,
    platforms: tuple[str, ...],
    glibc: str,
    index_url: str | None,
    candidates: list[dict[str, Any]],
    image: ImagePin,
    inputs: Mapping[str, str],
    resolver: str,
    requirements_file: str = REQUIREMENTS_FILE,
    model: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    nix: Mapping[str, Any] | None = None,
) -> tuple[EnvbuildLock, dict[str, bytes]]:
    """The lock and the files to write, in write order (envbuild.lock last: it commits)."""
    targets = targets_for(platforms, python, glibc)
    python_lock = select(candidates, python, targets)
    pylock_bytes = render_pylock(python_lock)
    req_bytes = render_requirements_txt(python_lock)
    lock = EnvbuildLock(
        name=name,
        python=PythonPin(
            version=python,
            platforms=tuple(t.platform for t in targets),
            glibc=glibc,
            index_url=index_url,
            lock_file=PYLOCK_FILE,
            lock_digest=sha256_bytes(pylock_bytes),
            requirements_file=requirements_file,
            requirements_digest=sha256_bytes(req_bytes),
            packages=len(python_lock.packages),
        ),
        image=image,
        inputs=dict(inputs),
        resolver=resolver,
        model=dict(model or {}),
        data=dict(data or {}),
        nix=dict(nix or {}),
    )
    files = {PYLOCK_FILE: pylock_bytes, requirements_file: req_bytes, LOCK_FILE: render_lock(lock)}
    return lock, files
