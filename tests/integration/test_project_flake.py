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
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "devShells" in result.stdout and "packages" in result.stdout
