"""The project's own flake.nix is valid Nix (nixpkgs itself is not reachable here, see README)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_flake_parses(tool: Callable[[str], str]) -> None:
    nix_instantiate = tool("nix-instantiate")
    result = subprocess.run([nix_instantiate, "--parse", str(REPO / "flake.nix")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "devShells" in result.stdout and "packages" in result.stdout


def test_the_flake_lists_every_runtime_dependency() -> None:
    """flake.nix builds envbuild from nixpkgs' Python packages: each of pyproject.toml's
    dependencies must be there (uv excepted: the flake takes nixpkgs' uv binary)."""
    import re
    import tomllib

    from packaging.requirements import Requirement

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {Requirement(d).name.lower() for d in deps} - {"uv"}
    match = re.search(r"runtimeDeps = ps: with ps; \[(.*?)\];", (REPO / "flake.nix").read_text(),
                      re.DOTALL)
    assert match is not None
    assert wanted <= set(match.group(1).split()), wanted - set(match.group(1).split())
