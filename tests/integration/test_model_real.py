"""The model issue end to end with real MLflow and BentoML: train, register, lock, package, serve.

Two tracking set-ups share one test body: the embedded default (a sqlite file in the project)
and an `mlflow server` on loopback. Models are trained once per set-up (module fixtures); every
step runs the real `envbuild` CLI in a subprocess, as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from envbuild.tools import QUIET_ENV

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "churn"
BIN = Path(sys.executable).parent
ROWS = [
    {"tenure": 3, "monthly_charges": 95.5, "contract": "month"},
    {"tenure": 60, "monthly_charges": 20.0, "contract": "two_year"},
    {"tenure": 14, "monthly_charges": 70.25, "contract": "year"},
    {"tenure": 1, "monthly_charges": 110.0, "contract": "month"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quiet_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **QUIET_ENV, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", **extra}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def wait_http(url: str, proc: subprocess.Popen[bytes], seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited with {proc.returncode}:\n"
                                 f"{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Project:
    """A working copy of the churn example, trained against one tracking URI."""

    dir: Path
    tracking_uri: str
    artifacts: Path  # where the tracking store keeps the model files
    work: Path

    def envbuild(self, *args: str, project: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "envbuild"), "-C", str(project or self.dir), *args],
                              capture_output=True, text=True, env=quiet_env(), timeout=900,
                              check=False)

    def ok(self, *args: str, project: Path | None = None) -> subprocess.CompletedProcess[str]:
        result = self.envbuild(*args, project=project)
        assert result.returncode == 0, f"envbuild {' '.join(args)}:\n{result.stderr[-4000:]}"
        return result

    def lock(self) -> dict[str, object]:
        import tomllib

        return tomllib.loads((self.dir / "envbuild.lock").read_text())

    def home(self, name: str) -> Path:
        return self.work / f"bentoml-{name}"


def write_project(dest: Path, tracking_uri: str, uri: str = "models:/churn@production") -> None:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE / "requirements.in", dest / "requirements.in")
    for name in ("pylock.toml", "requirements.txt"):  # previous pins: the resolve keeps them
        if (EXAMPLE / name).is_file() and not (dest / name).exists():
            shutil.copy(EXAMPLE / name, dest / name)
    (dest / "envbuild.toml").write_text(
        'name = "churn"\npython = "3.11"\nrequirements = ["requirements.in"]\n\n'
        f'[model]\nuri = "{uri}"\ntracking_uri = "{tracking_uri}"\n')


def train(project_dir: Path, tracking_uri: str, versions: int) -> None:
    for name in ("train.py", "data"):
        src = EXAMPLE / name
        if src.is_dir():
            shutil.copytree(src, project_dir / name, dirs_exist_ok=True)
        else:
            shutil.copy(src, project_dir / name)
    result = subprocess.run([sys.executable, str(project_dir / "train.py"), "--tracking-uri",
                             tracking_uri, "--versions", str(versions)],
                            capture_output=True, text=True, env=quiet_env(), timeout=600,
                            check=False)
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory,
                  tool: Callable[[str], str]) -> Iterator[tuple[str, Path]]:
    mlflow = tool("mlflow")
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [mlflow, "server", "--backend-store-uri", f"sqlite:///{root / 'store.db'}",
             "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT,
            env=quiet_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, 120, log)
        yield f"http://127.0.0.1:{port}", root / "artifacts"
    finally:
        stop(proc)


def make_project(kind: str, tmp_path_factory: pytest.TempPathFactory,
                 server: tuple[str, Path] | None = None) -> Project:
    work = tmp_path_factory.mktemp(f"model-{kind}")
    proj = work / "project"
    proj.mkdir()
    if server is None:
        uri, artifacts = "sqlite:///mlflow.db", proj / "mlruns"
        train(proj, f"sqlite:///{proj / 'mlflow.db'}", versions=2)
    else:
        uri, artifacts = server
        train(proj, uri, versions=2)
    write_project(proj, uri)
    return Project(dir=proj, tracking_uri=uri, artifacts=artifacts, work=work)


@pytest.fixture(scope="module")
def sqlite_project(tmp_path_factory: pytest.TempPathFactory,
                   tool: Callable[[str], str]) -> Project:
    """The embedded default: a sqlite store (and its artifacts) inside the project."""
    tool("bentoml")
    return make_project("sqlite", tmp_path_factory)


@pytest.fixture(scope="module")
def server_project(tmp_path_factory: pytest.TempPathFactory, tool: Callable[[str], str],
                   mlflow_server: tuple[str, Path]) -> Project:
    """An `mlflow server` on loopback, with proxied artifact storage."""
    tool("bentoml")
    return make_project("server", tmp_path_factory, mlflow_server)


@pytest.fixture(scope="module", params=["sqlite", "server"])
def project(request: pytest.FixtureRequest) -> Project:
    """Both set-ups, for the steps the issue asks to see against both: lock, package, serve."""
    found: Project = request.getfixturevalue(f"{request.param}_project")
    return found


def artifact_file(project: Project, name: str, version_dir_hint: str) -> Path:
    """The stored copy of a model file in the tracking store (for tampering)."""
    hits = sorted(p for p in project.artifacts.rglob(name) if version_dir_hint in str(p))
    assert hits, f"no {name} under {project.artifacts}"
    return hits[0]


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def ensure_locked(project: Project) -> None:
    """Tests may run alone (-k): the lock the flow starts from."""
    if not (project.dir / "envbuild.lock").exists():
        project.ok("lock")


# ---- the flow ----------------------------------------------------------------------------------

def test_lock_pins_the_alias_once(project: Project) -> None:
    project.ok("lock")
    model = project.lock()["model"]
    assert isinstance(model, dict)
    assert model["version"] == "1" and model["alias"] == "production"
    assert model["uri"] == "models:/churn@production"
    assert str(model["digest"]).startswith("sha256:") and "registered_model_meta" not in model["files"]
    assert "python_function" in model["flavors"] and model["run_id"]
    assert json.loads(model["signature"]["inputs"])[0]["name"] == "tenure"  # type: ignore[index]
    before = (project.dir / "envbuild.lock").read_bytes()
    again = project.ok("lock", "--json")
    assert json.loads(again.stdout)["resolved"] is False
    assert (project.dir / "envbuild.lock").read_bytes() == before
    project.ok("lock", "--check")


def test_package_serve_predict(project: Project) -> None:
    home = project.home("a")
    out = json.loads(project.ok("model", "package", "--bentoml-home", str(home), "--json").stdout)
    assert out["imported"] is True and out["built"] is True
    model = project.lock()["model"]
    assert isinstance(model, dict)
    assert out["model_tag"] == f"churn:v1-{str(model['digest'])[7:23]}"
    bundle = project.lock()["bundle"]
    assert isinstance(bundle, dict)
    assert out["bento_tag"] == f"churn:{str(bundle['id'])[7:19]}"
    bento_reqs = next(home.glob("bentos/churn/*/env/python/requirements.txt")).read_text()
    assert "bentoml@https://" in bento_reqs.replace(" ", "") and "\nbentoml==" not in bento_reqs

    port = free_port()
    log = project.work / "serve.log"
    with log.open("wb") as stream:
        server = subprocess.Popen(
            [str(BIN / "envbuild"), "-C", str(project.dir), "serve", "--bentoml-home", str(home),
             "--port", str(port)], stdout=stream, stderr=subprocess.STDOUT, env=quiet_env())
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", server, 120, log)
        resp = httpx.post(f"http://127.0.0.1:{port}/predict", json={"rows": ROWS}, timeout=30)
        assert resp.status_code == 200, resp.text
        served = resp.json()
        bad = httpx.post(f"http://127.0.0.1:{port}/predict", timeout=30,
                         json={"rows": [{**ROWS[0], "monthly_charges": "lots"}]})
        assert bad.status_code == 400 and "monthly_charges" in bad.text
        missing = httpx.post(f"http://127.0.0.1:{port}/predict", timeout=30,
                             json={"rows": [{"tenure": 1, "contract": "month"}]})
        assert missing.status_code == 400 and "monthly_charges" in missing.text
    finally:
        stop(server)
    # The model's own predict, loaded straight from MLflow.
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        "mlflow.set_tracking_uri(sys.argv[1])\n"
        "m = mlflow.pyfunc.load_model('models:/churn/1')\n"
        "print(json.dumps(m.predict(pd.DataFrame(json.loads(sys.argv[2]))).tolist()))\n"
    )
    uri = project.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{project.dir / uri.removeprefix('sqlite:///')}"
    own = subprocess.run([sys.executable, "-c", script, uri, json.dumps(ROWS)],
                         capture_output=True, text=True, env=quiet_env(), timeout=300,
                         check=False)
    assert own.returncode == 0, own.stderr[-3000:]
    assert served == json.loads(own.stdout.strip().splitlines()[-1])


# What BentoML itself writes differently on every build of the same inputs (README: "Models").
STAMPED = {"bento.yaml": ("creation_time",)}


def test_the_quick_alias_lookup_agrees_with_mlflow(project: Project) -> None:
    """`lock --check` reads the alias without importing mlflow (sqlite directly, a server by
    its REST API); it must answer exactly what MLflow's client answers."""
    from envbuild.model import registry

    uri = registry.tracking_uri_for(project.dir, project.tracking_uri)
    quick = registry._alias_target_quick(uri, "churn", "production")
    assert quick is not None and quick[0] == "1" and quick[1]
    client = registry.client(project.dir, project.tracking_uri)
    found = client.get_model_version_by_alias("churn", "production")
    assert quick == (str(found.version), str(found.run_id or ""), str(found.source))
    assert registry._alias_target_quick(uri, "churn", "no-such-alias") is None


def _bento_files(home: Path) -> dict[str, bytes]:
    (bento,) = [p for p in (home / "bentos" / "churn").iterdir() if p.is_dir()]
    return {str(p.relative_to(bento)): p.read_bytes() for p in sorted(bento.rglob("*"))
            if p.is_file()}


def _unstamped_bento_yaml(data: bytes) -> object:
    import yaml

    doc = yaml.safe_load(data)
    doc.pop("creation_time")
    for service in doc.get("services", []):
        for model in service.get("models", []):
            model.pop("creation_time")
    return doc


def test_same_lock_twice_same_bento(sqlite_project: Project) -> None:
    project = sqlite_project
    ensure_locked(project)
    first = project.home("a")  # built by the test above
    if not (first / "bentos").exists():
        project.ok("model", "package", "--bentoml-home", str(first))
    again = json.loads(project.ok("model", "package", "--bentoml-home", str(first),
                                  "--json").stdout)
    assert again["imported"] is False and again["built"] is False  # reused, nothing rewritten
    second = project.home("b")
    out = json.loads(project.ok("model", "package", "--bentoml-home", str(second),
                                "--json").stdout)
    assert out["built"] is True and out["bento_tag"] == again["bento_tag"]
    a, b = _bento_files(first), _bento_files(second)
    assert sorted(a) == sorted(b)
    differ = sorted(name for name in a if a[name] != b[name])
    assert differ in ([], ["bento.yaml"]), differ
    assert _unstamped_bento_yaml(a["bento.yaml"]) == _unstamped_bento_yaml(b["bento.yaml"])


def test_changed_model_file_is_refused_and_the_store_untouched(sqlite_project: Project) -> None:
    project = sqlite_project
    ensure_locked(project)
    model = project.lock()["model"]
    assert isinstance(model, dict)
    source = str(model["source"])  # models:/m-<id>: the logged model's artifact directory
    stored = artifact_file(project, "model.pkl", source.rsplit("/", 1)[-1])
    original = stored.read_bytes()
    home = project.home("a")
    fresh = project.home("tamper")
    before = tree_state(home)
    try:
        changed = bytearray(original)
        changed[len(changed) // 2] ^= 0x01
        stored.write_bytes(bytes(changed))
        for target in (home, fresh):
            result = project.envbuild("model", "package", "--bentoml-home", str(target))
            assert result.returncode == 7, result.stderr
            assert "digest mismatch" in result.stderr and "model.pkl: changed" in result.stderr
        assert tree_state(home) == before
        assert tree_state(fresh / "models") == {}
    finally:
        stored.write_bytes(original)


def test_store_with_a_different_model_under_the_same_tag(sqlite_project: Project) -> None:
    project = sqlite_project
    ensure_locked(project)
    """A BENTOML_HOME that holds other files under the locked tag: refused, nothing overwritten."""
    home = project.home("conflict")
    tag = json.loads(project.ok("model", "package", "--bentoml-home", str(project.home("a")),
                                "--json").stdout)["model_tag"]
    other = project.work / "other-model"
    shutil.copytree(next(project.home("a").glob("models/churn/*/mlflow_model")), other)
    (other / "extra.txt").write_text("not the locked model\n")
    imported = subprocess.run(
        [sys.executable, "-c", ("import sys, bentoml; "
                                 "bentoml.mlflow.import_model(sys.argv[1], sys.argv[2])"),
         tag, str(other)],
        capture_output=True, text=True, env=quiet_env(BENTOML_HOME=str(home)), timeout=300,
        check=False)
    assert imported.returncode == 0, imported.stderr[-2000:]
    before = tree_state(home)
    result = project.envbuild("model", "package", "--bentoml-home", str(home))
    assert result.returncode == 7, result.stderr
    assert "already holds a different model" in result.stderr
    assert tree_state(home) == before


def test_failures_are_clear(sqlite_project: Project) -> None:
    project = sqlite_project
    ensure_locked(project)
    bad = project.work / "bad"
    cases = {
        "models:/nope@production": (4, "nope"),
        "models:/churn@nope": (4, "alias 'nope'"),
        "models:/churn/99": (4, "version 99"),
    }
    for uri, (code, words) in cases.items():
        write_project(bad, project.tracking_uri if project.tracking_uri.startswith("http")
                      else f"sqlite:///{project.dir / 'mlflow.db'}", uri)
        result = project.envbuild("lock", project=bad)
        assert result.returncode == code, (uri, result.stderr)
        assert words in result.stderr and "hint:" in result.stderr
        assert not (bad / "envbuild.lock").exists()
    write_project(bad, f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    result = project.envbuild("lock", project=bad)
    assert result.returncode == 8 and "cannot be reached" in result.stderr, result.stderr
    assert time.monotonic() - started < 60


def test_promote_check_relock_rollback_history(server_project: Project) -> None:
    project = server_project
    ensure_locked(project)
    project.ok("lock", "--check")
    moved = json.loads(project.ok("model", "promote", "churn", "2", "--alias", "production",
                                  "--json").stdout)
    assert (moved["from"], moved["to"], moved["action"]) == ("1", "2", "promote")
    stale = project.envbuild("lock", "--check", "--json")
    assert stale.returncode == 5
    report = json.loads(stale.stdout)
    assert report["changed"] == ["model"]
    assert "now points to version 2 (locked: 1)" in report["error"]
    pylock = (project.dir / "pylock.toml").read_bytes()
    relocked = json.loads(project.ok("lock", "--json").stdout)
    assert relocked["written"] == ["envbuild.lock"]  # the Python pins stay as they were
    assert any("re-pinned models:/churn@production to version 2" in n for n in relocked["notes"])
    assert (project.dir / "pylock.toml").read_bytes() == pylock
    model = project.lock()["model"]
    assert isinstance(model, dict) and model["version"] == "2"
    project.ok("lock", "--check")

    back = json.loads(project.ok("model", "rollback", "churn", "--alias", "production",
                                 "--json").stdout)
    assert (back["from"], back["to"], back["action"]) == ("2", "1", "rollback")
    project.ok("lock")
    model = project.lock()["model"]
    assert isinstance(model, dict) and model["version"] == "1"

    history = json.loads(project.ok("model", "history", "churn", "--json").stdout)["moves"]
    assert [(m["action"], m["from"], m["to"]) for m in history] == [
        ("promote", "1", "2"), ("rollback", "2", "1")]
    text = project.ok("model", "history", "churn").stdout
    assert "promote" in text and "rollback" in text

    if not project.tracking_uri.startswith("http"):
        return
    # A second machine: a fresh working copy and BentoML store, the same tracking server.
    other = project.work / "second-machine"
    other.mkdir()
    for name in ("envbuild.toml", "requirements.in", "envbuild.lock", "pylock.toml",
                 "requirements.txt"):
        shutil.copy(project.dir / name, other / name)
    assert json.loads(project.ok("model", "history", "churn", "--json",
                                 project=other).stdout)["moves"] == history
    project.ok("lock", "--check", project=other)
    out = json.loads(project.ok("model", "package", "--bentoml-home",
                                str(project.work / "bentoml-second"), "--json",
                                project=other).stdout)
    assert out["built"] is True
    # Moves made there are seen here, and a rollback there follows the tag the promote left.
    project.ok("model", "promote", "churn", "2", "--alias", "production", project=other)
    back = json.loads(project.ok("model", "rollback", "churn", "--alias", "production",
                                 "--json", project=other).stdout)
    assert (back["from"], back["to"]) == ("2", "1")
    seen = json.loads(project.ok("model", "history", "churn", "--json").stdout)["moves"]
    assert [(m["action"], m["to"]) for m in seen][-2:] == [("promote", "2"), ("rollback", "1")]


def test_fetch_puts_the_checked_files_in_model_dir(sqlite_project: Project) -> None:
    """`envbuild model fetch`: the build context's model/ (what the image and Nix take)."""
    project = sqlite_project
    ensure_locked(project)
    first = json.loads(project.ok("model", "fetch", "--json").stdout)
    assert first["changed"] is True
    model = project.lock()["model"]
    assert isinstance(model, dict)
    target = project.dir / "model"
    have = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()}
    assert have == set(model["files"])  # type: ignore[arg-type]
    assert json.loads(project.ok("model", "fetch", "--json").stdout)["changed"] is False
    (target / "MLmodel").write_text("edited\n")
    assert json.loads(project.ok("model", "fetch", "--json").stdout)["changed"] is True
    assert (target / "MLmodel").read_text() != "edited\n"


def test_nix_build_fetches_a_model_not_fetched_yet(sqlite_project: Project,
                                                   tool: Callable[[str], str]) -> None:
    """`envbuild nix build` on a fresh checkout: the flake takes the model from model/, so the
    locked files are downloaded (digest-checked) first; Nix then checks each by its sha256."""
    tool("nix")
    project = sqlite_project
    ensure_locked(project)
    shutil.rmtree(project.dir / "model", ignore_errors=True)
    project.ok("nix", "generate")
    stand_in = Path(__file__).resolve().parents[1] / "nix" / "stand-in-nixpkgs"
    result = subprocess.run(
        [str(BIN / "envbuild"), "-C", str(project.dir), "nix", "build", "data",
         "--system", "x86_64-linux", "--nixpkgs", str(stand_in), "--json"],
        capture_output=True, text=True, timeout=600, check=False,
        env=quiet_env(NIX_CONFIG="build-users-group =\nsubstituters =\nsandbox = false"))
    assert result.returncode == 0, result.stderr[-4000:]
    out = Path(json.loads(result.stdout)["result"][0]["outputs"]["out"])
    model = project.lock()["model"]
    assert isinstance(model, dict)
    fetched = {p.relative_to(project.dir / "model").as_posix()
               for p in (project.dir / "model").rglob("*") if p.is_file()}
    assert fetched == set(model["files"])
    assert (out / "model" / "model.pkl").read_bytes() == (project.dir / "model" / "model.pkl").read_bytes()
