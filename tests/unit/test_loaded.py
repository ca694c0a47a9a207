from __future__ import annotations

import json
from pathlib import Path

import pytest

from envbuild.errors import IntegrityError, LockError
from envbuild.lock.loaded import load_bundle, parse_bundle

GOLDEN = Path(__file__).parent.parent / "golden" / "basic" / "expected"


def test_bundle_from_golden_files() -> None:
    bundle = parse_bundle((GOLDEN / "envbuild.lock").read_text(), (GOLDEN / "pylock.toml").read_bytes())
    assert bundle.lock.name == "golden"
    assert [t.platform for t in bundle.targets] == ["linux/amd64", "linux/arm64"]
    amd = [w.name for _, w in bundle.python.wheels_for(bundle.targets[0])]
    assert "numpy-2.3.4-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl" in amd
    assert not any("aarch64" in name for name in amd)


def test_tampered_pylock_is_refused() -> None:
    pylock = (GOLDEN / "pylock.toml").read_bytes().replace(b'version = "2.3.4"', b'version = "2.3.5"')
    with pytest.raises(IntegrityError, match="does not match"):
        parse_bundle((GOLDEN / "envbuild.lock").read_text(), pylock)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="no envbuild.lock"):
        load_bundle(tmp_path)
    (tmp_path / "envbuild.lock").write_bytes((GOLDEN / "envbuild.lock").read_bytes())
    with pytest.raises(LockError, match="pylock.toml is missing"):
        load_bundle(tmp_path)
    (tmp_path / "pylock.toml").write_bytes((GOLDEN / "pylock.toml").read_bytes())
    assert json.dumps(load_bundle(tmp_path).lock.name) == '"golden"'
