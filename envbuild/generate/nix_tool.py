"""Running Nix on a generated flake: argv from pure functions, run through the one Runner.

This is shell, not generator: it sits next to the flake generator until envbuild/build grows
a Nix builder. Every command enables flakes itself (`--extra-experimental-features`), so a
stock Nix (Debian's nix-bin 2.8 included) needs no configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from envbuild.errors import IntegrityError, ToolError
from envbuild.tools import Runner, which

FEATURES = ("--extra-experimental-features", "nix-command flakes")
NIX_HINT = ("install Nix (Debian: `apt-get install nix-bin`, elsewhere https://nixos.org/download); "
            "envbuild only needs it to evaluate and build the generated flake")


def flake_ref(project: Path, attr: str = "") -> str:
    """`path:` (not git): the flake sees the working tree, untracked data files included."""
    ref = f"path:{project.resolve()}"
    return f"{ref}#{attr}" if attr else ref


def _common(options: Mapping[str, str] | None, override_nixpkgs: Path | None) -> list[str]:
    argv = [*FEATURES]
    options = options or {}
    for key in sorted(options):
        argv += ["--option", key, options[key]]
    if override_nixpkgs is not None:
        argv += ["--override-input", "nixpkgs", f"path:{override_nixpkgs.resolve()}"]
    return argv


def nix_build_argv(project: Path, attr: str, *, options: Mapping[str, str] | None = None,
                   override_nixpkgs: Path | None = None) -> list[str]:
    """`nix build` of one flake output, leaving no result link and no changed flake.lock."""
    return ["nix", "build", "--no-link", "--no-write-lock-file", "--json",
            *_common(options, override_nixpkgs), flake_ref(project, attr)]


def nix_eval_argv(project: Path, attr: str, *, json: bool = True,
                  options: Mapping[str, str] | None = None, override_nixpkgs: Path | None = None) -> list[str]:
    return ["nix", "eval", "--no-write-lock-file", "--json" if json else "--raw",
            *_common(options, override_nixpkgs), flake_ref(project, attr)]


def nix_show_argv(project: Path, *, options: Mapping[str, str] | None = None,
                  override_nixpkgs: Path | None = None) -> list[str]:
    return ["nix", "flake", "show", "--no-write-lock-file", "--json",
            *_common(options, override_nixpkgs), flake_ref(project)]


def parse_argv(files: Sequence[Path]) -> list[str]:
    return ["nix-instantiate", "--parse", *(str(f) for f in files)]


def require_nix() -> None:
    if which("nix") is None:
        raise ToolError("nix is not installed", argv=["nix"], returncode=127, hint=NIX_HINT)


def run_nix(runner: Runner, argv: Sequence[str], *, what: str, timeout: float = 3600) -> str:
    """Run a nix command; a hash mismatch becomes an IntegrityError (exit 7), naming the path."""
    require_nix()
    result = runner.run(argv, check=False, timeout=timeout, what=what)
    if result.returncode == 0:
        return result.stdout
    lines = [line.strip() for line in result.stderr.splitlines()]
    mismatch = next((line for line in lines if "hash mismatch" in line
                     or "store path mismatch" in line), None)
    if mismatch is not None:
        raise IntegrityError(
            mismatch.removeprefix("error: "),
            hint="a model or data file changed after `envbuild lock`: restore it, or re-lock "
            "and re-generate the flake if the change is intended",
        )
    raise ToolError(f"{what} failed with exit code {result.returncode}", argv=argv,
                    returncode=result.returncode, stderr=result.stderr,
                    hint="run with -v to see the full command and its output")
