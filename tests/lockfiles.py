"""A minimal, valid envbuild.lock for tests that need a lock but no resolved packages."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from envbuild.lock.bundle import EnvbuildLock, ImagePin, PythonPin, render_lock


def placeholder_lock(**changes: object) -> EnvbuildLock:
    lock = EnvbuildLock(
        name="x",
        python=PythonPin(version="3.11", platforms=("linux/amd64",), glibc="2.36", index_url=None,
                         lock_file="pylock.toml", lock_digest="sha256:" + "a" * 64,
                         requirements_file="requirements.txt",
                         requirements_digest="sha256:" + "b" * 64, packages=0),
        image=ImagePin(name="x"), inputs={"envbuild.toml": "sha256:" + "e" * 64}, resolver="uv")
    return dataclasses.replace(lock, **changes)  # type: ignore[arg-type]


def write_placeholder_lock(project: Path) -> None:
    (project / "envbuild.lock").write_bytes(render_lock(placeholder_lock()))
