"""Golden files for the Nix flake generator: flake.nix and flake.lock, byte for byte.

Each case in tests/golden/nix_*/ holds a lock (envbuild.lock + pylock.toml), paths.json (the
model and data store paths, the generator's neutral input) and optionally options.json; the
expected files sit in expected/. Regenerate with `pytest tests/golden --regen-golden`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envbuild.generate.nix import NixOptions, NixpkgsPin, StorePath, render_flake
from envbuild.lock.loaded import parse_bundle

HERE = Path(__file__).parent
CASES = sorted(p.name for p in HERE.glob("nix_*") if (p / "paths.json").is_file())


def render_case(case: Path) -> dict[str, bytes]:
    bundle = parse_bundle((case / "envbuild.lock").read_text(), (case / "pylock.toml").read_bytes())
    paths = [StorePath.from_dict(d) for d in json.loads((case / "paths.json").read_text())]
    options = NixOptions()
    if (case / "options.json").is_file():
        raw = json.loads((case / "options.json").read_text())
        options = NixOptions(nixpkgs=NixpkgsPin.from_dict(raw["nixpkgs"]),
                             command=tuple(raw["command"]))
    return render_flake(bundle, paths, options)


@pytest.mark.parametrize("case", CASES)
def test_nix_golden(case: str, regen_golden: bool) -> None:
    directory = HERE / case
    files = render_case(directory)
    assert render_case(directory) == files  # generating twice changes no byte
    for name, data in files.items():
        expected = directory / "expected" / name
        if regen_golden:
            expected.parent.mkdir(exist_ok=True)
            expected.write_bytes(data)
        assert expected.read_bytes() == data, f"{case}/{name} differs from its golden file"
    assert sorted(p.name for p in (directory / "expected").iterdir()) == sorted(files)


def test_nix_golden_cases_exist() -> None:
    assert {"nix_churn", "nix_escape"} <= set(CASES)
