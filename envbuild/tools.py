"""One Runner for every subprocess envbuild starts.

The Runner is injected, so unit tests can swap in a fake that records argv; argv itself is
built by pure functions next to the code that needs it and tested as lists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from envbuild.errors import ToolError

# Every tool envbuild drives gets telemetry switched off (BentoML ignores plain DO_NOT_TRACK).
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "BENTOML_DO_NOT_TRACK": "true",
    "DO_NOT_TRACK": "1",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@dataclass(kw_only=True)
class Runner:
    """Runs argv lists; raises ToolError on failure unless check=False."""

    env: Mapping[str, str] = field(default_factory=dict)

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str | None] | None = None,
        check: bool = True,
        timeout: float | None = None,
        what: str = "",
    ) -> Result:
        # A None value unsets the variable (e.g. the machine's PIP_FIND_LINKS).
        merged = {**os.environ, **QUIET_ENV, **self.env, **(env or {})}
        full_env = {k: v for k, v in merged.items() if v is not None}
        name = Path(argv[0]).name
        try:
            proc = subprocess.run(
                list(argv),
                cwd=cwd,
                env=full_env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise ToolError(
                f"{name} is not installed",
                argv=argv,
                returncode=127,
                hint=f"install {name} (see the README's set-up command)",
            ) from exc
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            raise ToolError(
                f"{what or name} did not finish within {timeout:.0f} s",
                argv=argv,
                returncode=-1,
                stderr=stderr,
                hint="see the output above; a resolver that backtracks for long usually "
                "needs a tighter requirement",
            ) from exc
        result = Result(
            argv=tuple(argv), returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr
        )
        if check and proc.returncode != 0:
            raise ToolError(
                f"{what or name} failed with exit code {proc.returncode}",
                argv=argv,
                returncode=proc.returncode,
                stderr=proc.stderr or proc.stdout,
                hint="run with -v to see the full command and its output",
            )
        return result


def which(name: str) -> str | None:
    return shutil.which(name)
