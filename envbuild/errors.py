"""One error tree for everything envbuild reports to a user.

Every error carries a one-line message and a one-line hint; the CLI prints them as
`error: ...` / `hint: ...` and exits with the class's fixed exit code.
"""

from __future__ import annotations

from collections.abc import Sequence


class EnvbuildError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class SpecError(EnvbuildError):
    """The spec (envbuild.toml or [tool.envbuild]) is malformed; names the file and key path."""

    exit_code = 3

    def __init__(self, message: str, *, file: str, key: str = "", hint: str = "") -> None:
        where = f"{file}: {key}: " if key else f"{file}: "
        super().__init__(where + message, hint=hint)
        self.file = file
        self.key = key


class LockError(EnvbuildError):
    """Resolution or lock writing failed (unsatisfiable, no wheel for a platform, ...)."""

    exit_code = 4


class StaleLockError(LockError):
    """The lock no longer matches its inputs (`envbuild lock --check`)."""

    exit_code = 5

    def __init__(self, message: str, *, changed: Sequence[str], hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.changed = tuple(changed)


class ToolError(EnvbuildError):
    """A subprocess failed; keeps argv, exit code and the tail of stderr."""

    exit_code = 6

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str],
        returncode: int,
        stderr: str = "",
        hint: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr_tail = "\n".join(stderr.strip().splitlines()[-15:])


class IntegrityError(EnvbuildError):
    """Bytes did not match the hash the lock recorded."""

    exit_code = 7


class NetworkError(EnvbuildError):
    """A registry or index could not be reached, or answered with an error."""

    exit_code = 8
