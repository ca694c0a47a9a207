from __future__ import annotations

import dataclasses

import pytest

from envbuild.errors import LockError
from envbuild.lock.bundle import (
    EnvbuildLock,
    ImagePin,
    PythonPin,
    canonical_toml,
    inputs_digest,
    parse_lock,
    render_lock,
)


def make_lock(**changes: object) -> EnvbuildLock:
    lock = EnvbuildLock(
        name="x",
        python=PythonPin(version="3.11", platforms=("linux/amd64", "linux/arm64"), glibc="2.36",
                         index_url=None, lock_file="pylock.toml", lock_digest="sha256:" + "a" * 64,
                         requirements_file="requirements.txt",
                         requirements_digest="sha256:" + "b" * 64, packages=3),
        image=ImagePin(name="x", base_ref="r/p:1", base="r/p@sha256:" + "c" * 64),
        inputs={"requirements.in": "sha256:" + "d" * 64, "envbuild.toml": "sha256:" + "e" * 64},
        resolver="uv",
    )
    return dataclasses.replace(lock, **changes)  # type: ignore[arg-type]


def test_round_trips() -> None:
    lock = make_lock()
    assert parse_lock(render_lock(lock).decode()) == lock
    assert PythonPin.from_dict(lock.python.to_dict()) == lock.python
    assert ImagePin.from_dict(lock.image.to_dict()) == lock.image
    bare = ImagePin(name="y")
    assert ImagePin.from_dict(bare.to_dict()) == bare
    with_room = make_lock(model={"name": "churn", "version": "3"}, data={"files": 1})
    assert parse_lock(render_lock(with_room).decode()) == with_room


def test_rendering_is_canonical() -> None:
    lock = make_lock()
    reordered = make_lock(inputs=dict(reversed(list(lock.inputs.items()))))
    assert render_lock(lock) == render_lock(reordered)
    text = render_lock(lock)
    assert text.endswith(b"\n") and not text.endswith(b"\n\n") and b"\r" not in text


def test_bundle_id_ignores_inputs_but_not_pins() -> None:
    lock = make_lock()
    assert make_lock(inputs={"requirements.in": "sha256:" + "f" * 64}).bundle_id == lock.bundle_id
    assert make_lock(resolver="pip-tools").bundle_id == lock.bundle_id
    pins = dataclasses.replace(lock.python, lock_digest="sha256:" + "0" * 64)
    assert make_lock(python=pins).bundle_id != lock.bundle_id
    assert make_lock(image=ImagePin(name="x")).bundle_id != lock.bundle_id


def test_inputs_digest_is_order_free_and_documented_form() -> None:
    import hashlib

    files = {"b": "sha256:2", "a": "sha256:1"}
    expected = hashlib.sha256(b"a\0sha256:1\nb\0sha256:2\n").hexdigest()
    assert inputs_digest(files) == "sha256:" + expected


def test_hand_edit_is_detected() -> None:
    text = render_lock(make_lock()).decode().replace("packages = 3", "packages = 4")
    with pytest.raises(LockError, match="edited by hand"):
        parse_lock(text)


@pytest.mark.parametrize("text", ["version = 2\n", "version = 1\n", "not toml [", "version = 99\n"])
def test_damaged_lock(text: str) -> None:
    with pytest.raises(LockError):
        parse_lock(text)


def test_canonical_toml_sorts_nested_keys() -> None:
    assert canonical_toml({"b": 1, "a": {"d": 2, "c": 3}}) == b'b = 1\n\n[a]\nc = 3\nd = 2\n'


def test_bundle_id_is_the_documented_canonical_json() -> None:
    import hashlib
    import json

    lock = make_lock()
    pinned = lock.to_dict()
    del pinned["inputs"]
    del pinned["bundle"]["id"]
    text = json.dumps(pinned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert lock.bundle_id == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert '"version":2' in text
