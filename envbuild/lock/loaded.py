"""A lock read back from disk and checked: what every generator and builder starts from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from envbuild.errors import IntegrityError, LockError
from envbuild.files import sha256_bytes
from envbuild.lock.bundle import LOCK_FILE, EnvbuildLock, parse_lock
from envbuild.lock.platforms import Target, targets_for
from envbuild.lock.pylock import PythonLock, parse_pylock


@dataclass(frozen=True, kw_only=True, slots=True)
class Bundle:
    """envbuild.lock plus the pylock.toml it pins, verified against each other."""

    lock: EnvbuildLock
    python: PythonLock

    @property
    def targets(self) -> tuple[Target, ...]:
        return self.python.targets


def parse_bundle(lock_text: str, pylock_bytes: bytes) -> Bundle:
    """Pure: the two files' contents in, a checked Bundle out."""
    lock = parse_lock(lock_text)
    if sha256_bytes(pylock_bytes) != lock.python.lock_digest:
        raise IntegrityError(
            f"{lock.python.lock_file} does not match the digest envbuild.lock records",
            hint="it was edited or replaced after locking: run `envbuild lock`",
        )
    targets = targets_for(lock.python.platforms, lock.python.version, lock.python.glibc)
    python = parse_pylock(pylock_bytes.decode(), targets=targets, file=lock.python.lock_file)
    return Bundle(lock=lock, python=python)


def load_bundle(project: Path) -> Bundle:
    lock_path = project / LOCK_FILE
    if not lock_path.is_file():
        raise LockError(f"no {LOCK_FILE} in {project}", hint="run `envbuild lock` first")
    lock = parse_lock(lock_path.read_text(encoding="utf-8"))
    pylock_path = project / lock.python.lock_file
    if not pylock_path.is_file():
        raise LockError(f"{lock.python.lock_file} is missing", hint="run `envbuild lock`")
    return parse_bundle(lock_path.read_text(encoding="utf-8"), pylock_path.read_bytes())
