"""Data errors: part of the one error tree (envbuild.errors)."""

from __future__ import annotations

from envbuild.errors import EnvbuildError


class DataError(EnvbuildError):
    """Bad data input: a path outside the project, a symlink loop, a device file, a file that
    changed while it was hashed, permission denied, a full cache disk. Names the path."""

    exit_code = 1

    def __init__(self, message: str, *, path: str = "", hint: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message, hint=hint)
        self.path = path
