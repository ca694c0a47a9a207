from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envbuild.errors import LockError
from envbuild.lock.platforms import Target, targets_for
from envbuild.lock.pylock import (
    LockedPackage,
    PythonLock,
    Wheel,
    parse_pylock,
    render_pylock,
    render_requirements_txt,
    select,
)

GOLDEN = Path(__file__).parent.parent / "golden" / "basic"
TARGETS = targets_for(("linux/amd64", "linux/arm64"), "3.11", "2.36")


def candidates() -> list[dict[str, Any]]:
    return json.loads((GOLDEN / "candidates.json").read_text())


def test_wheel_ranks() -> None:
    amd = Target(platform="linux/amd64", python="3.11", glibc="2.36")
    assert amd.wheel_rank("a-1-cp311-cp311-manylinux_2_28_x86_64.whl") is not None
    assert amd.wheel_rank("a-1-cp311-cp311-manylinux_2_28_aarch64.whl") is None
    assert amd.wheel_rank("a-1-cp312-cp312-manylinux_2_28_x86_64.whl") is None
    assert amd.wheel_rank("a-1-cp311-cp311-manylinux_2_38_x86_64.whl") is None  # glibc too new
    assert amd.wheel_rank("a-1-cp311-cp311-musllinux_1_2_x86_64.whl") is None
    assert amd.wheel_rank("not-a-wheel.tar.gz") is None
    specific = amd.wheel_rank("a-1-cp311-cp311-manylinux_2_28_x86_64.whl")
    pure = amd.wheel_rank("a-1-py3-none-any.whl")
    assert specific is not None and pure is not None and specific < pure


def test_select_keeps_one_best_wheel_per_target_and_drops_foreign_packages() -> None:
    lock = select(candidates(), "3.11", TARGETS)
    by_name = {p.name: p for p in lock.packages}
    assert "pywin32" not in by_name  # no target needs it
    assert [w.name for w in by_name["numpy"].wheels] == [
        "numpy-2.3.4-cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
        "numpy-2.3.4-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
    ]
    assert by_name["arm-helper"].marker == "(sys_platform == 'linux' and platform_machine == 'aarch64')"
    assert by_name["zipp"].marker is None  # true on every target: no marker
    amd = lock.wheels_for(TARGETS[0])
    assert "arm-helper" not in {p.name for p, _ in amd}
    assert {p.name for p, _ in lock.wheels_for(TARGETS[1])} >= {"arm-helper", "numpy"}


def test_sdist_only_for_one_platform_is_a_clear_error() -> None:
    cands = [{"name": "natpkg", "version": "1.0", "sdist": {"url": "https://x/natpkg-1.0.tar.gz"},
              "wheels": [{"url": "https://x/natpkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
                          "hashes": {"sha256": "0" * 64}}]}]
    with pytest.raises(LockError) as info:
        select(cands, "3.11", TARGETS)
    assert "natpkg 1.0 has no wheel for linux/arm64" in info.value.message
    assert "only an sdist" in info.value.message
    assert "linux/arm64" in info.value.hint


def shuffled(cands: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = [dict(c, wheels=rng.sample(c["wheels"], len(c["wheels"]))) for c in cands]
    rng.shuffle(out)
    return out


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1),
       platforms=st.permutations(["linux/amd64", "linux/arm64"]))
def test_input_order_never_reaches_the_bytes(seed: int, platforms: list[str]) -> None:
    reference = select(candidates(), "3.11", TARGETS)
    targets = targets_for(tuple(platforms), "3.11", "2.36")
    lock = select(shuffled(candidates(), seed), "3.11", targets)
    assert render_pylock(lock) == render_pylock(reference)
    assert render_requirements_txt(lock) == render_requirements_txt(reference)


def test_pylock_parses_back() -> None:
    lock = select(candidates(), "3.11", TARGETS)
    again = parse_pylock(render_pylock(lock).decode(), targets=TARGETS)
    assert render_pylock(again) == render_pylock(lock)
    assert sorted(again.packages, key=lambda p: p.sort_key) == sorted(
        lock.packages, key=lambda p: p.sort_key)


def test_damaged_pylock() -> None:
    with pytest.raises(LockError, match="not a valid lock"):
        parse_pylock("lock-version = [\n", targets=TARGETS)


def test_domain_round_trips() -> None:
    wheel = Wheel(name="a-1-py3-none-any.whl", url="https://x/a-1-py3-none-any.whl", size=3,
                  sha256="ab" * 32)
    assert Wheel.from_dict(wheel.to_dict()) == wheel
    pkg = LockedPackage(name="a", version="1", marker="sys_platform == 'linux'", wheels=(wheel,))
    assert LockedPackage.from_dict(pkg.to_dict()) == pkg
    bare = LockedPackage(name="b", version="2", marker=None, wheels=(wheel,))
    assert LockedPackage.from_dict(bare.to_dict()) == bare


def test_wheel_name_from_url_ignores_query() -> None:
    w = Wheel.from_dict({"url": "https://x/p/a-1-py3-none-any.whl?x=1#frag",
                         "hashes": {"sha256": "0" * 64}})
    assert w.name == "a-1-py3-none-any.whl"


def test_empty_lock_renders() -> None:
    lock = PythonLock(python="3.11", targets=TARGETS, packages=())
    text = render_pylock(lock).decode()
    assert text.startswith("# pylock.toml: generated")
    assert text.endswith('created-by = "envbuild"\npackages = []\n')
    assert parse_pylock(text, targets=TARGETS).packages == ()
