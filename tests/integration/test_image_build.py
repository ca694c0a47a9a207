"""Real image builds: buildah, the loopback registry's debootstrap base, the Docker engine.

Builds are the slow part (the churn example installs 50 wheels: about 2 minutes from
scratch, seconds from cache), so the example is built once per module and shared:
- `churn_a`: a copy of the example whose model is trained and registered in its own MLflow
  store (sqlite), re-locked (the model pin is this store's), then `envbuild build` (cached
  layers allowed): the image holds the locked model's files in its model layer;
- a second copy in another directory is rebuilt from scratch (`verify --rebuild`, no layer
  cache) and must give the recorded image id;
- a third copy with a one-line code change may rebuild the code layer only;
- the image is exported as an OCI archive, loaded into the Docker engine, and the locked model
  in it answers predictions on loopback, as the non-root user.
A tiny project (one pure wheel) covers the "rm -rf every cache" rebuild and the failures.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envbuild.build import builders as b
from envbuild.build.service import check_base, run_build
from envbuild.build.verify import compare_rebuild
from envbuild.errors import LockError
from envbuild.tools import Runner

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "churn"
BASE_DIGEST = "sha256:c484beb06abe74306726d24d25560686e7008fbb33ca13602f02b111d902bcf4"
CLI = [sys.executable, "-m", "envbuild.cli.main"]


def envbuild(project: Path, *args: str, env: dict[str, str] | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, "-C", str(project), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False, timeout=1800)
    if check and proc.returncode != 0:
        pytest.fail(f"envbuild {' '.join(args)} exited {proc.returncode}\n{proc.stderr[-3000:]}")
    return proc


def copy_example(dest: Path) -> Path:
    """The example's locked files and code, as a user's checkout would have them."""
    dest.mkdir(parents=True)
    for name in ("envbuild.toml", "envbuild.lock", "pylock.toml", "requirements.in",
                 "requirements.txt"):
        shutil.copy2(EXAMPLE / name, dest / name)
    shutil.copytree(EXAMPLE / "app", dest / "app",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(EXAMPLE / "data", dest / "data")  # the lock pins data/churn.csv
    return dest


def train_and_lock(project: Path) -> None:
    """Train and register the example's model in the project's own sqlite MLflow store, then
    re-lock: the committed model pin belongs to the machine that trained it."""
    shutil.copy(EXAMPLE / "train.py", project / "train.py")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run([sys.executable, str(project / "train.py")], capture_output=True,
                          text=True, env=env, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    envbuild(project, "lock")


def record_of(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project / "envbuild.build.json").read_text())
    return data["builds"]["buildah linux/amd64"]


@pytest.fixture(scope="module")
def builders_ready(tool: Callable[[str], str], base_image: str) -> None:
    tool("buildah")
    tool("skopeo")


@pytest.fixture(scope="module")
def churn_a(builders_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_example(tmp_path_factory.mktemp("copy-a") / "churn")
    train_and_lock(project)
    envbuild(project, "build")
    return project


def test_build_records_the_image_and_tags_it(churn_a: Path) -> None:
    build = record_of(churn_a)
    assert build["image_id"].startswith("sha256:") and build["reproducible"] is True
    assert build["base"].endswith(BASE_DIGEST)
    assert len(build["layers"]) == 7  # base, user, requirements.txt, venv, SBOM, model, code
    inspect = subprocess.run(["buildah", "inspect", "--type", "image", build["tag"]],
                             capture_output=True, text=True, check=True)
    config = json.loads(inspect.stdout)["OCIv1"]["config"]
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["python", "-m", "app.serve"]
    labels = config["Labels"]
    lock_text = (churn_a / "envbuild.lock").read_text()
    assert labels["dev.envbuild.bundle.id"] in lock_text
    model = tomllib.loads(lock_text)["model"]
    assert labels["dev.envbuild.model.version"] == model["version"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["ENVBUILD_MODEL_DIR"] == "/opt/model"
    assert env["ENVBUILD_MODEL_DIGEST"] == model["digest"]
    assert (env["ENVBUILD_MODEL_NAME"], env["ENVBUILD_MODEL_VERSION"]) == ("churn", model["version"])


def test_the_bundle_holds_exactly_the_locked_model_files(churn_a: Path) -> None:
    lock = tomllib.loads((churn_a / "envbuild.lock").read_text())
    bundle_model = churn_a / ".envbuild" / "bundle" / "model"
    found = {p.relative_to(bundle_model).as_posix(): p for p in bundle_model.rglob("*")
             if p.is_file()}
    assert set(found) == set(lock["model"]["files"])
    for rel, path in found.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == lock["model"]["files"][rel]["sha256"]
        assert path.stat().st_mode & 0o777 == 0o644  # normalised: the same in every copy


def test_generate_twice_changes_no_byte(churn_a: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    first = envbuild(churn_a, "generate", "--out", str(out), "--json")
    snapshot = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    second = envbuild(churn_a, "generate", "--out", str(out), "--json")
    assert json.loads(second.stdout)["changed"] == []
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == snapshot
    wheel_lines = (out / "wheels" / "requirements.txt").read_text().splitlines()[1:]
    assert json.loads(first.stdout)["wheels"] == len(wheel_lines) > 0


def test_a_copy_elsewhere_rebuilds_from_scratch_to_the_same_digest(
        churn_a: Path, tmp_path: Path) -> None:
    copy_b = tmp_path / "somewhere" / "else" / "churn"
    shutil.copytree(churn_a, copy_b, ignore=shutil.ignore_patterns(".envbuild"))
    proc = envbuild(copy_b, "verify", "--rebuild", "--json")
    result = json.loads(proc.stdout)
    assert result["ok"] is True, result
    rebuild = next(c for c in result["checks"] if c["name"] == "rebuild")
    assert record_of(churn_a)["image_id"] in rebuild["summary"]


def test_a_code_change_rebuilds_only_the_code_layer(churn_a: Path, tmp_path: Path) -> None:
    copy_c = tmp_path / "churn-c"
    shutil.copytree(churn_a, copy_c, ignore=shutil.ignore_patterns(".envbuild"))
    serve = copy_c / "app" / "serve.py"
    serve.write_text(serve.read_text().replace('"status": "ok"', '"status": "ok", "v": 2'))
    proc = envbuild(copy_c, "build", "--no-record", "--json")
    changed = json.loads(proc.stdout)
    before = record_of(churn_a)
    assert changed["layers"][:-1] == before["layers"][:-1]  # base, user, venv, SBOM, model
    assert changed["layers"][-1] != before["layers"][-1]
    assert changed["image_id"] != before["image_id"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def test_the_image_runs_under_docker_as_non_root(churn_a: Path, tool: Callable[[str], str],
                                                 tmp_path: Path) -> None:
    tool("docker")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the Docker engine is not running (scripts/setup.sh starts dockerd)")
        pytest.skip("the Docker engine is not running; run `bash scripts/setup.sh`")
    archive = tmp_path / "churn.oci.tar"
    proc = envbuild(churn_a, "build", "--oci-archive", str(archive), "--load-docker", "--json")
    built = json.loads(proc.stdout)
    assert archive.is_file() and built["oci_archive_digest"].startswith("sha256:")
    sbom_beside = archive.with_name(archive.name + ".cdx.json").read_bytes()
    tag = built["tag"].removeprefix("localhost/")
    port = _free_port()
    name = f"envbuild-test-{port}"
    subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "--network", "host",
                    "-e", f"PORT={port}", tag], check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = _get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                if time.monotonic() > deadline:
                    logs = subprocess.run(["docker", "logs", name], capture_output=True,
                                          text=True, check=False)
                    pytest.fail(f"the service never answered: {logs.stdout}{logs.stderr}")
                time.sleep(0.5)
        assert health == {"status": "ok"}
        # The locked model answers (a month-to-month newcomer paying a lot churns; a two-year
        # customer of five years does not), and says which model it is.
        risky = _get(f"http://127.0.0.1:{port}/predict?tenure=2&monthly_charges=99&contract=month")
        loyal = _get(f"http://127.0.0.1:{port}/predict?tenure=60&monthly_charges=30"
                     "&contract=two_year")
        assert risky["churn"] is True and loyal["churn"] is False
        assert 0.5 < risky["probability"] <= 1 and 0 <= loyal["probability"] < 0.5
        model = tomllib.loads((churn_a / "envbuild.lock").read_text())["model"]
        assert risky["model"] == {"name": "churn", "version": model["version"],
                                  "digest": model["digest"]}
        uid = subprocess.run(["docker", "exec", name, "id", "-u"], capture_output=True,
                             text=True, check=True).stdout.strip()
        assert uid == "10001"
        sbom = subprocess.run(["docker", "exec", name, "cat", "/usr/share/envbuild/sbom.cdx.json"],
                              capture_output=True, check=True).stdout
        assert sbom == sbom_beside == (churn_a / ".envbuild" / "bundle" / "sbom.cdx.json").read_bytes()
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


# ---- a tiny project: one pure wheel -------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(builders_ready: None, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("tiny") / "tiny"
    (project / "app").mkdir(parents=True)
    (project / "app" / "__init__.py").write_text("")
    (project / "app" / "main.py").write_text("import six\nprint('six', six.__version__)\n")
    (project / "requirements.in").write_text("six==1.17.0\n")
    (project / "envbuild.toml").write_text(
        'name = "tiny"\nplatforms = ["linux/amd64"]\nrequirements = ["requirements.in"]\n'
        f'[image]\nbase = "{base_image}"\ncmd = ["python", "-m", "app.main"]\ncode = ["app"]\n')
    envbuild(project, "lock")
    return project


def test_rebuild_after_rm_rf_of_every_cache_gives_the_same_digest(tiny: Path,
                                                                  tmp_path: Path) -> None:
    """Every cache gone: the wheel cache, the bundle directory, and the whole image storage
    (layers, the base image: a fresh containers-storage that must pull the base again)."""
    envbuild(tiny, "build")
    first = record_of(tiny)["image_id"]
    cache, storage = tmp_path / "cache", tmp_path / "storage"
    conf = tmp_path / "storage.conf"
    conf.write_text(f'[storage]\ndriver = "{b.storage_driver() or "overlay"}"\n'
                    f'graphroot = "{storage}/graph"\nrunroot = "{storage}/run"\n')
    env = {"ENVBUILD_CACHE_DIR": str(cache), "CONTAINERS_STORAGE_CONF": str(conf)}
    for _ in range(2):
        shutil.rmtree(tiny / ".envbuild")
        envbuild(tiny, "build", "--no-record", env=env)
        assert any((cache / "wheels" / "sha256").iterdir())  # fetched again
        images = subprocess.run(["buildah", "images", "--format", "{{.ID}}"], env={
            **os.environ, **env}, capture_output=True, text=True, check=True).stdout
        assert first.removeprefix("sha256:")[:12] in images
        subprocess.run(["buildah", "rmi", "--all", "--force"], env={**os.environ, **env},
                       capture_output=True, check=False)
        shutil.rmtree(cache)
        subprocess.run(["rm", "-rf", str(storage)], check=True)  # overlay dirs: rm, not rmtree


def test_verify_reports_the_files_of_a_non_deterministic_step(base_image: str,
                                                              tiny: Path, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    base = f"127.0.0.1:5000/envbuild/python@{BASE_DIGEST}"
    (context / "Dockerfile").write_text(
        f"FROM {base}\n"
        "RUN mkdir -p /srv && date +%s%N > /srv/built-at && echo fixed > /srv/same\n")
    runner = Runner()
    opts = b.BuildOptions(builder="buildah", context=str(context), base=base,
                          iidfile=str(tmp_path / "iid"), storage_driver=b.storage_driver())
    first = run_build(opts, runner)
    result = compare_rebuild(context, recorded=first, builder="buildah", base=base,
                             runner=runner)
    assert not result.same and result.diff is not None
    layer = result.diff.layers[0]
    changes = {c.path: c.what for c in layer.files}
    assert changes == {"srv/built-at": ("content",)}, changes
    assert layer.index == 1


def test_a_base_digest_the_registry_no_longer_has(registry: str, tool: Callable[[str], str]) -> None:
    tool("buildah")
    gone = f"{registry}/envbuild/python@sha256:{'0' * 64}"
    with pytest.raises(LockError, match="no longer has the base image"):
        check_base(gone, "buildah", Runner(), b.storage_driver())


def test_podman_builds_the_same_image_as_buildah(tiny: Path, tool: Callable[[str], str]) -> None:
    tool("podman")
    envbuild(tiny, "build")
    buildah_id = record_of(tiny)["image_id"]
    proc = envbuild(tiny, "build", "--builder", "podman", "--no-cache", "--no-record", "--json")
    assert json.loads(proc.stdout)["image_id"] == buildah_id


def test_docker_builder_warns_that_its_digest_will_not_repeat(tiny: Path,
                                                              tool: Callable[[str], str]) -> None:
    tool("docker")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the Docker engine is not running (scripts/setup.sh starts dockerd)")
        pytest.skip("the Docker engine is not running; run `bash scripts/setup.sh`")
    # Debian's docker.io CLI (20.10) reaches the engine's BuildKit without buildx; a newer CLI
    # without the buildx plugin is refused with a clear error (unit-tested).
    path = "/usr/bin:/usr/sbin:" + os.environ.get("PATH", "")
    proc = envbuild(tiny, "build", "--builder", "docker", "--no-record", "--json",
                    env={"PATH": path})
    built = json.loads(proc.stdout)
    assert built["reproducible"] is False and built["image_id"].startswith("sha256:")
    assert "will not repeat" in proc.stderr
    run = subprocess.run(["docker", "run", "--rm", built["tag"]], capture_output=True, text=True,
                         check=True)
    assert run.stdout.strip() == "six 1.17.0"


def test_verify_cli_exits_9_and_names_the_changed_file(tiny: Path, tmp_path: Path) -> None:
    project = tmp_path / "tiny-edit"
    shutil.copytree(tiny, project, ignore=shutil.ignore_patterns(".envbuild"))
    envbuild(project, "build")
    main = project / "app" / "main.py"
    main.write_text(main.read_text() + "# changed after the recorded build\n")
    proc = envbuild(project, "verify", "--rebuild", check=False)
    assert proc.returncode == 9, proc.stderr
    assert "FAIL  rebuild" in proc.stderr
    assert "srv/app/main.py: content" in proc.stderr  # the layer, the file and what differs
    main.write_text(main.read_text().replace("# changed after the recorded build\n", ""))
    assert envbuild(project, "verify", "--rebuild", check=False).returncode == 0
