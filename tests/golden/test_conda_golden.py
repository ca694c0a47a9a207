"""Golden files for conda-lock.yml: solved records in (records.json), the file's bytes out.

conda_shuffled holds conda_basic's records in another order and expects the same bytes.
Regenerate with `pytest tests/golden --regen-golden` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envbuild.conda.environment import CondaEnvironment
from envbuild.conda.lockfile import CondaPackage, parse_conda_lock, render_conda_lock
from envbuild.conda.solve import build_lock
from tests.conda import require_module

require_module("conda_lock")

HERE = Path(__file__).parent
CASES = sorted(p.name for p in HERE.glob("conda_*") if (p / "records.json").is_file())


def render_case(case: Path) -> bytes:
    d = json.loads((case / "records.json").read_text())
    env = CondaEnvironment(name=None, channels=tuple(d["channels"]),
                           dependencies=tuple(d["specs"]), pip=())
    lock = build_lock(env, environment=d["environment"], channels=d["channels"],
                      platforms=d["platforms"],
                      packages=[CondaPackage.from_dict(p) for p in d["packages"]])
    return render_conda_lock(lock)


@pytest.mark.parametrize("case", CASES)
def test_conda_lock_golden(case: str, regen_golden: bool) -> None:
    data = render_case(HERE / case)
    expected = HERE / case / "expected" / "conda-lock.yml"
    if regen_golden:
        expected.parent.mkdir(exist_ok=True)
        expected.write_bytes(data)
    assert expected.read_bytes() == data, f"{case}/conda-lock.yml differs from its golden file"


def test_shuffled_input_gives_the_same_bytes() -> None:
    assert render_case(HERE / "conda_basic") == render_case(HERE / "conda_shuffled")


def test_rendering_twice_changes_no_byte() -> None:
    assert render_case(HERE / "conda_basic") == render_case(HERE / "conda_basic")


def test_conda_lock_reads_back_what_envbuild_wrote() -> None:
    """conda-lock's own parser reads the file, every url and sha256 intact."""
    data = render_case(HERE / "conda_basic")
    lock = parse_conda_lock(data)
    d = json.loads((HERE / "conda_basic" / "records.json").read_text())
    want = sorted((p["platform"], p["name"], p["url"], p["sha256"]) for p in d["packages"])
    assert sorted((p.platform, p.name, p.url, p.sha256) for p in lock.packages) == want
    assert render_conda_lock(build_lock(
        CondaEnvironment(name=None, channels=(), dependencies=tuple(d["specs"]), pip=()),
        environment="environment.yml", channels=list(lock.channels),
        platforms=list(lock.platforms), packages=list(lock.packages))) == data


def test_pip_entries_written_by_conda_lock_are_refused_or_dropped() -> None:
    """conda-lock itself also locks the pip: list; envbuild keeps pip packages in pylock.toml."""
    from envbuild.errors import LockError

    data = render_case(HERE / "conda_basic").decode()
    pip = ("- name: six\n  version: 1.16.0\n  manager: pip\n  platform: linux-64\n"
           "  dependencies: {}\n  url: https://example.org/six-1.16.0-py2.py3-none-any.whl\n"
           "  hash:\n    sha256: " + "f" * 64 + "\n  category: main\n  optional: false\n")
    with_pip = (data + pip).encode()
    with pytest.raises(LockError, match="six is a pip package"):
        parse_conda_lock(with_pip)
    assert parse_conda_lock(with_pip, drop_pip=True) == parse_conda_lock(data.encode())
