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


def _without_traceback_frames(text: str) -> list[str]:
    """A tool's output minus Python traceback frames (pip-compile prints them on failure)."""
    keep = []
    for line in text.strip().splitlines():
        stripped = line.strip()
        if line.startswith(("  File ", "    ")) or set(stripped) <= {"^", "~"}:
            continue
        keep.append(line)
    return keep


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
        self.stderr = stderr
        self.stderr_tail = "\n".join(_without_traceback_frames(stderr)[-15:])


class IntegrityError(EnvbuildError):
    """Bytes did not match the hash the lock recorded."""

    exit_code = 7


class NetworkError(EnvbuildError):
    """A registry or index could not be reached, or answered with an error."""

    exit_code = 8
