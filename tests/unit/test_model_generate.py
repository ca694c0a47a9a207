"""The BentoML build context: golden files, escaping, the bento's requirements; argv lists."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from envbuild.errors import LockError
from envbuild.generate.bento import (
    render_bento_requirements,
    render_bentofile,
    render_build_context,
    render_service,
)
from envbuild.lock.bundle import render_lock
from envbuild.lock.loaded import Bundle, parse_bundle
from envbuild.model.package import build_argv, import_argv, serve_argv
from envbuild.model.pin import ModelPin

CASE = Path(__file__).parent.parent / "golden" / "model_churn"


def golden_bundle() -> Bundle:
    return parse_bundle((CASE / "envbuild.lock").read_text(), (CASE / "pylock.toml").read_bytes())


def with_model(bundle: Bundle, **changes: object) -> Bundle:
    pin = dataclasses.replace(ModelPin.from_dict(bundle.lock.model), **changes)  # type: ignore[arg-type]
    lock = dataclasses.replace(bundle.lock, model=pin.to_dict())
    return dataclasses.replace(bundle, lock=lock)


def test_golden_build_context(regen_golden: bool) -> None:
    files = render_build_context(golden_bundle())
    expected = CASE / "expected"
    if regen_golden:
        for name, data in files.items():
            (expected / name).write_bytes(data)
    assert sorted(files) == sorted(p.name for p in expected.iterdir())
    for name, data in files.items():
        assert data == (expected / name).read_bytes(), f"{name} differs; --regen-golden and review"


def test_generated_files_are_deterministic_and_valid() -> None:
    a, b = render_build_context(golden_bundle()), render_build_context(golden_bundle())
    assert a == b
    for data in a.values():
        assert data.endswith(b"\n") and not data.endswith(b"\n\n") and b"\r" not in data
    compile(a["service.py"], "service.py", "exec")
    bentofile = yaml.safe_load(a["bentofile.yaml"])
    bundle = golden_bundle()
    assert bentofile["labels"]["envbuild.bundle"] == bundle.lock.bundle_id
    assert bentofile["python"] == {"requirements_txt": "./requirements.txt", "lock_packages": False}


def _columns(service: bytes) -> list[tuple[str, str, bool]]:
    """COLUMNS as data: the names must come out as string literals, whatever they contain."""
    tree = ast.parse(service)
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "COLUMNS":
            assert isinstance(node.value, ast.List)
            out = []
            for elt in node.value.elts:
                assert isinstance(elt, ast.Tuple)
                name, kind, required = elt.elts
                assert isinstance(name, ast.Constant) and isinstance(kind, ast.Name)
                assert isinstance(required, ast.Constant)
                out.append((name.value, kind.id, required.value))
            return out
    raise AssertionError("no COLUMNS in service.py")


NASTY = ['a"), __import__("os").system("id"), ("', "line\nbreak", "$(touch /tmp/x)",
         "quote'single", "back\\slash", "uni\u2028code", "{{ jinja }}"]


def test_column_names_and_model_names_are_escaped() -> None:
    bundle = golden_bundle()
    sig = json.dumps([{"type": "double", "name": n, "required": True} for n in NASTY])
    evil = with_model(bundle, signature_inputs=sig, name='x"\n$(id)')
    service = render_service(evil)
    assert _columns(service) == [(n, "float", True) for n in NASTY]
    # Nothing but the expected top-level statements: no injected code ran into the module.
    kinds = [type(n).__name__ for n in ast.parse(service).body]
    assert kinds.count("Expr") == 0
    bentofile = yaml.safe_load(render_bentofile(evil))
    assert bentofile["labels"]["envbuild.model"] == 'models:/x"\n$(id)/1'


def test_bento_requirements_hash_every_package_and_name_bentoml_by_url() -> None:
    text = render_bento_requirements(golden_bundle().python).decode()
    assert "bentoml @ https://files.pythonhosted.org/" in text
    assert "bentoml==" not in text
    heads = [line for line in text.splitlines() if line and not line.startswith(("#", " "))]
    assert all(line.endswith(" \\") for line in heads)  # every package carries --hash lines
    assert text.count("--hash=sha256:") >= len(heads)


def test_bento_requirements_without_bentoml_fail() -> None:
    python = golden_bundle().python
    python = dataclasses.replace(python, packages=tuple(p for p in python.packages
                                                        if p.name != "bentoml"))
    with pytest.raises(LockError, match="no bentoml wheel"):
        render_bento_requirements(python)


def test_no_model_in_the_lock() -> None:
    bundle = golden_bundle()
    bare = dataclasses.replace(bundle, lock=dataclasses.replace(bundle.lock, model={}))
    with pytest.raises(LockError, match="pins no model"):
        render_build_context(bare)
    assert b"[model]" not in render_lock(bare.lock)


def test_argv_lists(tmp_path: Path) -> None:
    assert import_argv("/py", tmp_path, '{"a": 1}', "churn:v1-ab", "churn:0123") == [
        "/py", "-m", "envbuild.model.bento_store", str(tmp_path), '{"a": 1}', "churn:v1-ab",
        "churn:0123"]
    assert build_argv("/py", tmp_path, "0123") == [
        "/py", "-m", "bentoml", "build", "--bentofile", str(tmp_path / "bentofile.yaml"),
        "--version", "0123", "--output", "tag", str(tmp_path)]
    assert serve_argv("/py", "churn:0123", "127.0.0.1", 3000) == [
        "/py", "-m", "bentoml", "serve", "churn:0123", "--host", "127.0.0.1", "--port", "3000"]


def test_flavor_bentoml_cannot_load_stops_before_any_download(tmp_path: Path) -> None:
    from envbuild.errors import EnvbuildError
    from envbuild.model.package import package_model

    bundle = with_model(golden_bundle(), flavors=("custom_flavor",))
    (tmp_path / "envbuild.lock").write_bytes(render_lock(bundle.lock))
    (tmp_path / "pylock.toml").write_bytes((CASE / "pylock.toml").read_bytes())

    class NoRunner:
        def run(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("nothing may run")

    with pytest.raises(EnvbuildError, match="python_function"):
        package_model(tmp_path, runner=NoRunner())  # type: ignore[arg-type]
