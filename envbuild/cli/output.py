"""How the CLI talks to people (stderr, rich when it is a terminal) and to machines (--json)."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from envbuild.errors import EnvbuildError, ToolError

EXIT_CODES = """exit codes:
  0  success
  1  other envbuild error
  2  usage error (bad arguments)
  3  spec error (envbuild.toml / [tool.envbuild])
  4  lock error (unsatisfiable, no wheel for a platform, image not found, damaged lock)
  5  stale lock (`lock --check`: the spec or a requirement file changed)
  6  a tool failed (uv, pip-compile, ...)
  7  integrity error (a hash did not match)
  8  network error (index or registry unreachable)
  9  not reproducible (`verify --rebuild`: the rebuilt image has another digest)
  10 generated files differ from what the lock generates (`verify`)
  11 data does not match the lock (`verify`)
  12 the model's files do not match the lock (`verify`)
"""


def emit_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def info(message: str) -> None:
    sys.stderr.write(message + "\n")


def note(message: str) -> None:
    sys.stderr.write(f"note: {message}\n")


def report_error(exc: BaseException, *, verbose: bool, as_json: bool) -> int:
    if isinstance(exc, EnvbuildError):
        code, message, hint = exc.exit_code, exc.message, exc.hint
    elif isinstance(exc, KeyboardInterrupt):
        code, message, hint = 130, "interrupted", "nothing was half-written; run it again"
    elif isinstance(exc, OSError) and exc.errno == 28:
        code, message, hint = 1, f"disk full: {exc}", "free some space; no file was half-written"
    else:
        code, message, hint = 1, f"internal error: {exc!r}", "run with -v and report the traceback"
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, ToolError):
        if exc.stderr_tail:
            sys.stderr.write("".join(f"  | {line}\n" for line in exc.stderr_tail.splitlines()))
        if verbose:
            sys.stderr.write(f"  command: {' '.join(exc.argv)}\n")
    elif isinstance(exc, EnvbuildError) and isinstance(exc.__cause__, ToolError):
        tail = exc.__cause__.stderr_tail
        sys.stderr.write("".join(f"  | {line}\n" for line in tail.splitlines()))
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.write(f"hint: {hint or 'run with -v for details'}\n")
    if as_json:
        emit_json({"ok": False, "error": message, "hint": hint, "exit_code": code})
    return code


@contextmanager
def progress(enabled: bool) -> Iterator[Any]:
    """A status line for long steps: a rich spinner on a terminal, plain lines otherwise."""
    if enabled and sys.stderr.isatty():
        from rich.console import Console

        console = Console(stderr=True)
        with console.status("working...") as status:
            def update(message: str) -> None:
                console.log(message)
                status.update(message + "...")

            yield update
    else:
        yield lambda message: info(f"{message}...") if enabled else None
