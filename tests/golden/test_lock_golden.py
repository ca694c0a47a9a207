"""Golden files for every lock file envbuild renders: pylock.toml, requirements.txt, envbuild.lock.

Each case in tests/golden/<case>/ holds candidates.json (what a resolver returned) and spec.json
(the rest of the lock's inputs); the expected outputs sit beside them, byte for byte.
Regenerate with `pytest tests/golden --regen-golden` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envbuild.lock.assemble import assemble
from envbuild.lock.bundle import ImagePin

HERE = Path(__file__).parent
CASES = sorted(p.name for p in HERE.iterdir() if (p / "candidates.json").is_file())


def render_case(case: Path) -> dict[str, bytes]:
    spec = json.loads((case / "spec.json").read_text())
    candidates = json.loads((case / "candidates.json").read_text())
    _, files = assemble(
        name=spec["name"], python=spec["python"], platforms=tuple(spec["platforms"]),
        glibc=spec["glibc"], index_url=spec.get("index_url"), candidates=candidates,
        image=ImagePin(name=spec["name"], base_ref=spec.get("base_ref"), base=spec.get("base")),
        inputs=spec["inputs"], resolver=spec["resolver"],
    )
    return files


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, regen_golden: bool) -> None:
    directory = HERE / case
    files = render_case(directory)
    for name, data in files.items():
        expected = directory / "expected" / name
        if regen_golden:
            expected.parent.mkdir(exist_ok=True)
            expected.write_bytes(data)
        assert expected.read_bytes() == data, f"{case}/{name} differs from its golden file"
    assert sorted(p.name for p in (directory / "expected").iterdir()) == sorted(files)


def test_golden_cases_exist() -> None:
    assert CASES, "no golden case found"
