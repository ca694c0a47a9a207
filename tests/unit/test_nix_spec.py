"""The nixpkgs pin as a spec option: [nix] in envbuild.toml -> envbuild.lock -> flake.lock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from envbuild.cli.main import main
from envbuild.errors import SpecError
from envbuild.lock import service
from envbuild.spec import parse_spec

GOLDEN = Path(__file__).parent.parent / "golden" / "basic"
REV = "0123456789abcdef0123456789abcdef01234567"
NAR = "sha256-" + "A" * 43 + "="


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    def fake(backend: str, request: Any, runner: Any) -> list[dict[str, Any]]:
        return [c for c in json.loads((GOLDEN / "candidates.json").read_text())
                if c["name"] in ("numpy", "Zipp")]

    monkeypatch.setattr(service, "resolve", fake)
    (tmp_path / "envbuild.toml").write_text(
        f'name = "p"\nrequirements = ["requirements.in"]\n'
        f'[nix]\nnixpkgs_rev = "{REV}"\nnixpkgs_nar_hash = "{NAR}"\n')
    (tmp_path / "requirements.in").write_text("numpy\nzipp\n")
    return tmp_path


def test_spec_nix_table_is_validated() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec('name = "p"\n[nix]\nnixpkgs_rev = "main"\nnixpkgs_nar_hash = "x"\n')
    assert info.value.key in ("nix.nixpkgs_nar_hash", "nix.nixpkgs_rev")
    with pytest.raises(SpecError, match="missing required key"):
        parse_spec(f'name = "p"\n[nix]\nnixpkgs_rev = "{REV}"\n')
    spec = parse_spec(f'name = "p"\n[nix]\nnixpkgs_rev = "{REV}"\nnixpkgs_nar_hash = "{NAR}"\n')
    assert spec.nix is not None and spec.nix.nixpkgs_rev == REV


def test_the_spec_pin_reaches_the_generated_flake_lock(project: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(project), "lock"]) == 0
    assert f'nixpkgs_rev = "{REV}"' in (project / "envbuild.lock").read_text()
    assert main(["-C", str(project), "generate", "--target", "nix"]) == 0, capsys.readouterr().err
    nodes = json.loads((project / "flake.lock").read_text())["nodes"]
    assert nodes["nixpkgs"]["locked"]["rev"] == REV
    assert nodes["nixpkgs"]["locked"]["narHash"] == NAR
    other = "f" * 40
    assert main(["-C", str(project), "generate", "--target", "nix", "--nixpkgs-rev", other,
                 "--nixpkgs-nar-hash", NAR]) == 0
    assert json.loads((project / "flake.lock").read_text())["nodes"]["nixpkgs"]["locked"]["rev"] == other
