"""The model's lock table, digest, names and lock/check logic (no MLflow needed)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from envbuild.errors import EnvbuildError, IntegrityError, LockError
from envbuild.lock.bundle import parse_lock, render_lock
from envbuild.model import lock as model_lock
from envbuild.model.files import check_model_files, list_model_files
from envbuild.model.pin import (
    ModelFile,
    ModelPin,
    ModelRef,
    bento_model_tag,
    bento_tag,
    input_fields,
    model_digest,
    tag_name,
)
from envbuild.spec.model import ModelSpec
from tests.unit.test_bundle import make_lock

SIG = json.dumps([{"type": "long", "name": "tenure", "required": True},
                  {"type": "double", "name": "monthly charges", "required": True},
                  {"type": "string", "name": "contract", "required": False}])


def make_pin(**changes: Any) -> ModelPin:
    pin = ModelPin(
        uri="models:/churn@production", tracking_uri="sqlite:///mlflow.db", name="churn",
        alias="production", version="3", run_id="r" * 32, source="models:/m-abc",
        flavors=("python_function", "sklearn"), signature_inputs=SIG,
        signature_outputs='[{"type": "long"}]',
        digest="sha256:" + "ab" * 32,
        files=(ModelFile(path="MLmodel", size=10, sha256="c" * 64),
               ModelFile(path="sub/model.pkl", size=2, sha256="d" * 64)),
    )
    return dataclasses.replace(pin, **changes)


def test_model_ref() -> None:
    assert ModelRef.parse("models:/churn@production") == ModelRef(name="churn", alias="production")
    assert ModelRef.parse("models:/churn/12") == ModelRef(name="churn", version="12")
    assert ModelRef.parse("models:/churn/12").pinned_uri == "models:/churn/12"
    for bad in ("models:/churn", "runs:/x/model", "models:/a/b/c", "models:/churn@"):
        with pytest.raises(ValueError):
            ModelRef.parse(bad)


def test_pin_round_trips_alone_and_inside_the_lock() -> None:
    for pin in (make_pin(), make_pin(alias=None, uri="models:/churn/3", run_id=None,
                                     signature_inputs=None, signature_outputs=None, files=())):
        assert ModelPin.from_dict(pin.to_dict()) == pin
        lock = make_lock(model=pin.to_dict())
        again = parse_lock(render_lock(lock).decode())
        assert ModelPin.from_dict(again.model) == pin
        assert again.bundle_id == lock.bundle_id


def test_model_digest_enters_the_bundle_id() -> None:
    a = make_lock(model=make_pin().to_dict())
    b = make_lock(model=make_pin(digest="sha256:" + "ef" * 32).to_dict())
    assert a.bundle_id != b.bundle_id


def test_version_is_always_a_string() -> None:
    d = make_pin().to_dict()
    d["version"] = 3  # what a sqlite store hands out
    assert ModelPin.from_dict(d).version == "3"


def test_damaged_table_is_a_lock_error() -> None:
    with pytest.raises(LockError, match="damaged"):
        ModelPin.from_dict({"uri": "models:/x/1"})


def _tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "sub" / "model.pkl").write_bytes(os.urandom(3000))
    (root / "sub" / "deeper" / "ünïcode name.txt").write_text("x")
    (root / "empty-dir").mkdir()
    (root / "registered_model_meta").write_text("model_name: churn\nmodel_version: '3'\n")


def test_digest_matches_an_independent_computation(tmp_path: Path) -> None:
    _tree(tmp_path)
    # Independently: sha256sum for the file hashes, find for the listing, the documented form.
    found = subprocess.run(["find", ".", "-type", "f", "-printf", "%P\\0%s\\n"], cwd=tmp_path,
                           capture_output=True, check=True).stdout.decode().splitlines()
    lines = []
    for entry in found:
        path, size = entry.split("\0")
        if path == "registered_model_meta":
            continue
        sha = subprocess.run(["sha256sum", path], cwd=tmp_path, capture_output=True,
                             check=True).stdout.split()[0].decode()
        lines.append(f"{path}\0{size}\0{sha}\n")
    listing = "".join(sorted(lines, key=lambda line: line.split("\0")[0].encode()))
    expected = "sha256:" + hashlib.sha256(listing.encode()).hexdigest()
    files = list_model_files(tmp_path)
    assert model_digest(files) == expected
    assert [f.path for f in files] == ["MLmodel", "sub/deeper/ünïcode name.txt", "sub/model.pkl"]
    # Order of the input never matters; registered_model_meta never counts.
    assert model_digest(reversed(files)) == expected
    (tmp_path / "registered_model_meta").write_text("model_name: churn\nmodel_alias: x\n")
    assert model_digest(list_model_files(tmp_path)) == expected


def test_one_changed_byte_is_named(tmp_path: Path) -> None:
    _tree(tmp_path)
    files = list_model_files(tmp_path)
    pin = make_pin(digest=model_digest(files), files=files)
    check_model_files(tmp_path, pin)
    data = bytearray((tmp_path / "sub" / "model.pkl").read_bytes())
    data[100] ^= 1
    (tmp_path / "sub" / "model.pkl").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"digest mismatch.*sub/model\.pkl: changed"):
        check_model_files(tmp_path, pin)


def test_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(IntegrityError, match="link is not a regular file"):
        list_model_files(tmp_path)


def test_tags_are_derived_never_random() -> None:
    pin = make_pin()
    assert bento_model_tag(pin) == "churn:v3-" + "ab" * 8
    assert bento_model_tag(pin) == bento_model_tag(make_pin())
    assert tag_name("Churn Model/v2") == "churn-model-v2"
    assert tag_name("__") == "model"
    assert bento_tag("Churn", "0123456789ab") == "churn:0123456789ab"


def test_input_fields_from_the_signature() -> None:
    fields = input_fields(make_pin())
    assert [(f.name, f.type, f.required) for f in fields] == [
        ("tenure", "int", True), ("monthly charges", "float", True), ("contract", "str", False)]
    with pytest.raises(EnvbuildError, match="has no signature"):
        input_fields(make_pin(signature_inputs=None))
    tensor = json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}])
    with pytest.raises(EnvbuildError, match="not supported"):
        input_fields(make_pin(signature_inputs=tensor))


# ---- lock and check: which cases ask the registry ---------------------------------------------

@pytest.fixture
def registry_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the MLflow side: the alias points to version 3, resolving pins version 4."""
    from envbuild.model import registry

    calls: list[str] = []
    target = {"version": "3", "run": "r" * 32}

    def alias_target(project: Path, uri: str, name: str, alias: str) -> tuple[str, str, str]:
        calls.append(f"alias {name}@{alias}")
        return target["version"], target["run"], "models:/m-abc"

    def resolve_pin(project: Path, spec_uri: str, uri: str) -> ModelPin:
        calls.append(f"resolve {spec_uri}")
        return make_pin(version=target["version"], digest="sha256:" + "99" * 32)

    monkeypatch.setattr(registry, "alias_target", alias_target)
    monkeypatch.setattr(registry, "resolve_pin", resolve_pin)
    return calls


def test_fixed_version_already_locked_asks_nothing(tmp_path: Path,
                                                    registry_calls: list[str]) -> None:
    pin = make_pin(uri="models:/churn/3", alias=None)
    spec = ModelSpec(uri="models:/churn/3", tracking_uri="sqlite:///mlflow.db")
    assert model_lock.lock_model(tmp_path, spec, pin.to_dict()) == pin.to_dict()
    assert model_lock.model_stale_reasons(tmp_path, spec, pin.to_dict()) == []
    assert registry_calls == []


def test_alias_unchanged_keeps_the_pin(tmp_path: Path, registry_calls: list[str]) -> None:
    spec = ModelSpec(uri="models:/churn@production", tracking_uri="sqlite:///mlflow.db")
    pin = make_pin()
    assert model_lock.lock_model(tmp_path, spec, pin.to_dict()) == pin.to_dict()
    assert model_lock.model_stale_reasons(tmp_path, spec, pin.to_dict()) == []
    assert registry_calls == ["alias churn@production", "alias churn@production"]


def test_moved_alias_is_stale_and_relocked(tmp_path: Path, registry_calls: list[str]) -> None:
    spec = ModelSpec(uri="models:/churn@production", tracking_uri="sqlite:///mlflow.db")
    pin = make_pin(version="2")
    assert model_lock.model_stale_reasons(tmp_path, spec, pin.to_dict()) == [
        "model: alias 'production' of churn now points to version 3 (locked: 2)"]
    new = model_lock.lock_model(tmp_path, spec, pin.to_dict())
    assert new["version"] == "3"
    assert registry_calls[-1] == "resolve models:/churn@production"


def test_same_version_number_from_another_store(tmp_path: Path,
                                                 registry_calls: list[str]) -> None:
    """A second machine trained its own model: version 3 there is not the locked version 3."""
    spec = ModelSpec(uri="models:/churn@production", tracking_uri="sqlite:///mlflow.db")
    pin = make_pin(run_id="o" * 32)
    assert model_lock.model_stale_reasons(tmp_path, spec, pin.to_dict()) == [
        (f"model: alias 'production' of churn points to version 3 of another store "
        f"(run {'r' * 32}; locked: run {'o' * 32})")]
    assert model_lock.lock_model(tmp_path, spec, pin.to_dict())["digest"] == "sha256:" + "99" * 32


def test_spec_and_lock_disagree(tmp_path: Path, registry_calls: list[str]) -> None:
    spec = ModelSpec(uri="models:/churn@production")
    assert model_lock.model_stale_reasons(tmp_path, None, make_pin().to_dict()) == [
        "model: locked, but the spec has no [model] section"]
    assert model_lock.model_stale_reasons(tmp_path, spec, {}) == [
        "model: the spec's [model] is not locked yet"]
    other = ModelSpec(uri="models:/churn@staging")
    assert model_lock.model_stale_reasons(tmp_path, other, make_pin().to_dict()) == [
        "model: the spec's [model] changed since the lock"]
    assert model_lock.lock_model(tmp_path, None, make_pin().to_dict()) == {}
    assert registry_calls == []


def test_no_change_fixed_version_imports_no_mlflow(tmp_path: Path) -> None:
    """The fast path of a no-change `envbuild lock`: not even the mlflow import."""
    pin = make_pin(uri="models:/churn/3", alias=None)
    (tmp_path / "pin.json").write_text(json.dumps(pin.to_dict()))
    code = (
        "import json, sys; from pathlib import Path\n"
        "from envbuild.model.lock import lock_model, model_stale_reasons\n"
        "from envbuild.spec.model import ModelSpec\n"
        "pin = json.loads(Path(sys.argv[1]).read_text())\n"
        "spec = ModelSpec(uri='models:/churn/3', tracking_uri='sqlite:///mlflow.db')\n"
        "assert lock_model(Path('.'), spec, pin) == pin\n"
        "assert model_stale_reasons(Path('.'), spec, pin) == []\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'bentoml')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "pin.json")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
