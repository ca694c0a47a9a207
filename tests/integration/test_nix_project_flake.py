"""The project's own flake.nix evaluates: envbuild's package and dev shell, for both systems.

Evaluated against the STAND-IN nixpkgs in tests/nix/stand-in-nixpkgs (real nixpkgs cannot be
fetched here); a real build of the package needs nixpkgs and its binary cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STAND_IN = REPO / "tests" / "nix" / "stand-in-nixpkgs"
NIX = ["nix", "--extra-experimental-features", "nix-command flakes",
       "--option", "build-users-group", "", "--option", "substituters", ""]


def _ref(attr: str) -> str:
    # A git flake sees tracked files only: the same source a user's `nix build` gets.
    base = f"git+file://{REPO}" if (REPO / ".git").exists() else f"path:{REPO}"
    return f"{base}#{attr}"


def _eval(attr: str) -> str:
    result = subprocess.run(
        [*NIX, "eval", "--raw", "--no-write-lock-file", "--override-input", "nixpkgs",
         f"path:{STAND_IN}", _ref(attr)],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("system", ["x86_64-linux", "aarch64-linux"])
def test_project_flake_evaluates(tool: Callable[[str], str], system: str) -> None:
    tool("nix")
    shell = _eval(f"devShells.{system}.default.drvPath")
    assert shell.endswith(".drv")
    drv = _eval(f"packages.{system}.default.drvPath")
    shown = subprocess.run([*NIX, "show-derivation", drv], capture_output=True, text=True,
                           timeout=60, check=True)
    (info,) = json.loads(shown.stdout).values()
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert info["env"]["name"] == f"envbuild-{version}" and info["system"] == system
    src = Path(info["env"]["src"])
    assert {"pyproject.toml", "envbuild", "templates", "tests"} <= set(os.listdir(src))
    assert not (src / ".venv").exists() and not (src / ".git").exists()


def test_project_flake_lock_is_current(tool: Callable[[str], str]) -> None:
    """flake.lock pins the input flake.nix names: Nix needs no re-lock (and no network)."""
    tool("nix")
    result = subprocess.run(
        [*NIX, "--option", "download-attempts", "1", "--option", "connect-timeout", "2",
         "flake", "lock", "--no-update-lock-file", _ref("").rstrip("#")],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
