"""`envbuild verify`, the CI gate: every failure kind has its own exit code and names the file.

Real uv, a real registry, real data hashing and a real image bundle. The model is a directory
of files pinned in the lock as `envbuild lock` pins a registered model (the MLflow side is
covered by test_model_real.py); a non-repeating image digest (exit 9) by test_image_build.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from envbuild.files import sha256_file
from envbuild.lock.bundle import parse_lock, render_lock
from envbuild.model.files import list_model_files
from envbuild.model.pin import ModelPin, model_digest

pytestmark = pytest.mark.integration

MODEL_SPEC = '[model]\nuri = "models:/tiny/1"\ntracking_uri = "sqlite:///registry.db"\n'


def envbuild(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENVBUILD_CACHE": str(project.parent / "cache")}
    return subprocess.run([sys.executable, "-m", "envbuild.cli.main", "-C", str(project), *args],
                          capture_output=True, text=True, timeout=600, env=env, check=False)


def pin_model(project: Path) -> None:
    """Add [model] to the spec and pin model/ in the lock, as `envbuild lock` records it."""
    spec = project / "envbuild.toml"
    spec.write_text(spec.read_text() + MODEL_SPEC)
    files = list_model_files(project / "model")
    pin = ModelPin(uri="models:/tiny/1", tracking_uri="sqlite:///registry.db", name="tiny",
                   alias=None, version="1", run_id="r1", source="models:/m-1",
                   flavors=("python_function",), signature_inputs=None, signature_outputs=None,
                   digest=model_digest(files), files=files)
    lock = parse_lock((project / "envbuild.lock").read_text())
    inputs = {**lock.inputs, "envbuild.toml": sha256_file(spec)}
    (project / "envbuild.lock").write_bytes(
        render_lock(replace(lock, model=pin.to_dict(), inputs=inputs)))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Iterator[Path]:
    project = tmp_path_factory.mktemp("verify") / "p"
    (project / "app").mkdir(parents=True)
    (project / "app" / "main.py").write_text("print('hello')\n")
    (project / "data").mkdir()
    (project / "data" / "train.csv").write_text("tenure,churned\n1,0\n2,1\n")
    # Written an hour ago: a file hashed within seconds of its last write is hashed again
    # next time (git's "racily clean" rule); this test wants the stat cache to answer.
    os.utime(project / "data" / "train.csv", (1_700_000_000, 1_700_000_000))
    (project / "model").mkdir()
    (project / "model" / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    (project / "model" / "model.pkl").write_bytes(b"\x80\x04pickled")
    (project / "requirements.in").write_text("six==1.16.0\n")
    (project / "envbuild.toml").write_text(
        f'name = "verifytest"\nrequirements = ["requirements.in"]\n'
        f'[image]\nbase = "{base_image}"\ncode = ["app"]\ncmd = ["python", "-m", "app.main"]\n')
    for args in (("lock",), ("data", "add", "data/train.csv")):
        result = envbuild(project, *args)
        assert result.returncode == 0, result.stderr
    pin_model(project)
    result = envbuild(project, "generate")
    assert result.returncode == 0, result.stderr
    yield project


def test_nothing_changed_passes_every_check(project: Path) -> None:
    result = envbuild(project, "verify", "--json")
    assert result.returncode == 0, result.stderr
    checks = json.loads(result.stdout)["checks"]
    assert [(c["name"], c["ok"]) for c in checks] == [
        ("lock", True), ("generated", True), ("data", True), ("model", True)]
    assert "0 file(s) re-hashed" in checks[2]["summary"]  # the stat cache answered


@pytest.mark.parametrize(
    ("path", "edit", "code", "named"),
    [
        ("requirements.in", lambda b: b + b"idna\n", 5, "requirements.in"),
        (".envbuild/bundle/Dockerfile", lambda b: b + b"RUN true\n", 10, "Dockerfile"),
        ("data/train.csv", lambda b: b.replace(b"2,1", b"2,0"), 11, "data/train.csv"),
        ("model/model.pkl", lambda b: b[:-1] + b"X", 12, "model.pkl"),
        (".envbuild/bundle/model/model.pkl", lambda b: b + b"X", 12, "bundle/model/"),
    ],
    ids=["edited-requirement", "edited-dockerfile", "changed-data-byte", "changed-model-file",
         "changed-model-file-in-the-image-bundle"],
)
def test_each_failure_kind(project: Path, path: str, edit: object, code: int, named: str) -> None:
    target = project / path
    original = target.read_bytes()
    mode = target.stat().st_mode
    try:
        target.chmod(0o644)
        target.write_bytes(edit(original))  # type: ignore[operator]
        result = envbuild(project, "verify")
        assert result.returncode == code, result.stderr
        failing = [line for line in result.stderr.splitlines() if line.startswith("FAIL")]
        assert len(failing) == 1 and named in failing[0], result.stderr
        assert named in next(line for line in result.stderr.splitlines()
                             if line.startswith("error: "))
        as_json = json.loads(envbuild(project, "verify", "--json").stdout)
        assert [c["exit_code"] for c in as_json["checks"] if not c["ok"]] == [code]
    finally:
        target.write_bytes(original)
        target.chmod(mode)
    assert envbuild(project, "verify").returncode == 0
