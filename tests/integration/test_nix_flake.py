"""Generated flakes under real Nix (Debian's nix-bin): parsed, evaluated, and partly built.

nixpkgs cannot be fetched here (no network, no binary cache), so every evaluation swaps the
flake's pinned nixpkgs for the STAND-IN in tests/nix/stand-in-nixpkgs (`--override-input`):
a tiny flake with nixpkgs' function names and argument shapes and no real packages. What is
really built is what needs no binary cache: the hash-checked model and data paths. A full build
of the environment and the image needs a machine with nixpkgs and its cache (README, "Nix").
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envbuild.errors import IntegrityError
from envbuild.generate.nix import StorePath, nix_system, render_flake
from envbuild.generate.nix_nar import dump_nar, nar_sha256, sri_sha256
from envbuild.generate.nix_syntax import nix_string
from envbuild.generate.nix_tool import (
    nix_build_argv,
    nix_eval_argv,
    nix_show_argv,
    parse_argv,
    run_nix,
)
from envbuild.lock.loaded import Bundle, load_bundle
from envbuild.tools import Runner

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHURN = REPO / "examples" / "churn"
STAND_IN = REPO / "tests" / "nix" / "stand-in-nixpkgs"
SYSTEMS = ("x86_64-linux", "aarch64-linux")
# Root without the nixbld group, nothing to substitute from; the stand-in's linkFarm uses the
# host's /bin/sh, so builds run outside the sandbox.
OPTIONS = {"build-users-group": "", "substituters": "", "sandbox": "false"}
NIX_ENV = {"NIX_CONFIG": "build-users-group =\nsubstituters =\nsandbox = false"}


@pytest.fixture(scope="module")
def nix(tool: Callable[[str], str]) -> str:
    tool("nix-instantiate")
    tool("nix-store")
    return tool("nix")


def run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **NIX_ENV})


def ok(argv: list[str]) -> str:
    result = run(argv)
    assert result.returncode == 0, f"{' '.join(argv)}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def churn() -> Bundle:
    return load_bundle(CHURN)


def _paths(project: Path) -> list[StorePath]:
    data = project / "data" / "train.csv"
    return [
        StorePath(name="data/train.csv", path="data/train.csv", kind="file",
                  sha256=hashlib.sha256(data.read_bytes()).hexdigest()),
        StorePath(name="model", path="model", kind="dir", sha256=nar_sha256(project / "model")),
    ]


@pytest.fixture
def project(tmp_path: Path, churn: Bundle) -> Path:
    """The churn lock and code, a data file and a model directory, and their flake."""
    for name in ("envbuild.lock", "pylock.toml"):
        shutil.copy(CHURN / name, tmp_path / name)
    if (CHURN / "app").is_dir():  # the lock's [image] code paths
        shutil.copytree(CHURN / "app", tmp_path / "app")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_bytes(b"tenure,churned\n1,0\n24,1\n")
    (tmp_path / "model" / "artifacts").mkdir(parents=True)
    (tmp_path / "model" / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "model" / "artifacts" / "weights.bin").write_bytes(bytes(range(256)))
    for name, data in render_flake(churn, _paths(tmp_path)).items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


def test_every_generated_file_parses(nix: str, project: Path) -> None:
    golden = sorted((REPO / "tests" / "golden").glob("nix_*/expected/flake.nix"))
    assert golden
    ok(parse_argv([project / "flake.nix", *golden]))
    for lock in [project / "flake.lock", *(g.with_name("flake.lock") for g in golden)]:
        out = ok(["nix-instantiate", "--eval", "--strict", "--json", "-E",
                  f"(builtins.fromJSON (builtins.readFile {lock})).nodes.nixpkgs.locked.type"])
        assert json.loads(out) == "github"


def test_flake_shows_every_output(nix: str, project: Path) -> None:
    shown = json.loads(ok(nix_show_argv(project, options=OPTIONS, override_nixpkgs=STAND_IN)))
    for system in SYSTEMS:
        assert set(shown["packages"][system]) == {"default", "data", "image"}
        assert set(shown["devShells"][system]) == {"default"}


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_output_instantiates(nix: str, project: Path, system: str) -> None:
    """`.drvPath` forces the whole derivation graph: every fetchurl, the env, image, shell."""
    attrs = [f"packages.{system}.{o}" for o in ("default", "data", "image")]
    for attr in [*attrs, f"devShells.{system}.default"]:
        drv = ok(nix_eval_argv(project, attr + ".drvPath", json=False, options=OPTIONS,
                               override_nixpkgs=STAND_IN))
        assert drv.startswith("/nix/store/") and drv.endswith(".drv"), (attr, drv)
    env = json.loads(ok(["nix", "show-derivation", "--extra-experimental-features",
                         "nix-command flakes", drv_of(project, f"packages.{system}.default")]))
    (info,) = env.values()
    assert info["env"]["name"].startswith("churn-env-") and info["system"] == system


def drv_of(project: Path, attr: str) -> str:
    return ok(nix_eval_argv(project, attr + ".drvPath", json=False, options=OPTIONS,
                            override_nixpkgs=STAND_IN))


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
def test_flake_installs_the_locks_wheels(nix: str, project: Path, churn: Bundle,
                                         platform: str) -> None:
    """Done-when: the wheel set Nix sees (names, sha256) is `wheels_for(target)`, the set the
    Dockerfile installs."""
    target = next(t for t in churn.targets if t.platform == platform)
    expected = {(w.name, sri_sha256(w.sha256)) for _, w in churn.python.wheels_for(target)}
    seen = json.loads(ok(nix_eval_argv(project, f"envbuild.wheels.{nix_system(platform)}",
                                       options=OPTIONS, override_nixpkgs=STAND_IN)))
    assert {(w["file"], w["hash"]) for w in seen} == expected
    assert len(seen) == len(expected)


def _build_data(project: Path) -> str:
    argv = nix_build_argv(project, "packages.x86_64-linux.data", options=OPTIONS,
                          override_nixpkgs=STAND_IN)
    out = run_nix(Runner(env=NIX_ENV), argv, what="nix build .#data", timeout=120)
    result: str = json.loads(out)[0]["outputs"]["out"]
    return result


def test_data_paths_build_and_refuse_one_changed_byte(nix: str, project: Path) -> None:
    out = Path(_build_data(project))
    assert (out / "data" / "train.csv").read_bytes() == (project / "data/train.csv").read_bytes()
    assert (out / "model" / "artifacts" / "weights.bin").read_bytes() == bytes(range(256))

    data = project / "data" / "train.csv"
    original = data.read_bytes()
    data.write_bytes(original[:-2] + b"2\n")  # one byte
    with pytest.raises(IntegrityError, match=r"hash mismatch in data/train\.csv: expected sha256:"):
        _build_data(project)
    data.write_bytes(original)
    assert _build_data(project) == str(out)

    weights = project / "model" / "artifacts" / "weights.bin"
    weights.write_bytes(bytes(range(255)) + b"\0")
    with pytest.raises(IntegrityError, match="hash mismatch in model: expected nar-sha256:"):
        _build_data(project)


def test_cli_builds_data_and_exits_7_on_a_change(nix: str, project: Path,
                                                 tool: Callable[[str], str]) -> None:
    envbuild = tool("envbuild")
    argv = [envbuild, "nix", "build", "data", "--system", "x86_64-linux", "-C", str(project),
            "--nixpkgs", str(STAND_IN)]
    assert run(argv).returncode == 0, run(argv).stderr
    (project / "data" / "train.csv").write_bytes(b"changed\n")
    failed = run(argv)
    assert failed.returncode == 7
    assert "error: hash mismatch in data/train.csv" in failed.stderr
    assert "hint: a model or data file changed" in failed.stderr


HOSTILE = ['"', "\\", "${x}", "$${x}", "''${x}", "a\nb", "\r\t", "$", "\\$", "${", "}", "ü ✓",
           '"; abort "x"; "', "\\\\${builtins.abort 1}"]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\0",
                                                blacklist_categories=("Cs",)), max_size=40),
                min_size=1, max_size=40))
def test_nix_reads_back_every_escaped_string(nix: str, values: list[str]) -> None:
    values = [*HOSTILE, *values]
    expr = "[ " + " ".join(nix_string(v) for v in values) + " ]"
    result = run(["nix-instantiate", "--eval", "--strict", "--json", "-E", expr])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == values


def test_nar_hash_matches_nix(nix: str, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "run").write_bytes(b"#!/bin/sh\necho hi\n")
    os.chmod(tree / "a" / "b" / "run", 0o755)
    (tree / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    (tree / "empty").mkdir()
    (tree / "z").write_bytes(b"")
    os.symlink("a/b/run", tree / "link")
    os.symlink("/nonexistent/target", tree / "dangling")
    (tree / "ünï code").write_text("x")
    for path in (tree, tree / "big.bin", tree / "link"):
        got = ok(["nix", "--extra-experimental-features", "nix-command", "hash", "path",
                  str(path)]).strip()
        assert sri_sha256(nar_sha256(path)) == got, path
    dumped = subprocess.run(["nix-store", "--dump", str(tree)], capture_output=True, check=True)
    assert dump_nar(tree) == dumped.stdout


def test_data_added_with_envbuild_is_checked_by_nix(nix: str, tmp_path: Path,
                                                    tool: Callable[[str], str]) -> None:
    """The whole path: `envbuild data add` pins, `envbuild nix generate` writes the flake from
    the lock alone (a directory as one flat-hashed path per file), `envbuild nix build data`
    builds it, and one changed byte in a directory's file is refused (exit 7)."""
    from envbuild.data.cache import CACHE_ENV

    envbuild = tool("envbuild")
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pylock.toml", "envbuild.toml", "requirements.in"):
        shutil.copy(CHURN / name, project / name)
    shutil.copytree(CHURN / "app", project / "app")
    # The example's model files live in its MLflow store, not here: this test is about data,
    # so its lock is the example's without its [model] and [data] tables.
    from dataclasses import replace

    from envbuild.lock.bundle import parse_lock, render_lock

    lock = parse_lock((CHURN / "envbuild.lock").read_text())
    (project / "envbuild.lock").write_bytes(render_lock(replace(lock, model={}, data={})))
    (project / "data" / "images" / "sub").mkdir(parents=True)
    (project / "data" / "train.csv").write_bytes(b"tenure,churned\n1,0\n")
    (project / "data" / "images" / "one.png").write_bytes(b"\x89PNG one")
    (project / "data" / "images" / "sub" / "two.png").write_bytes(b"\x89PNG two")
    env = {**os.environ, **NIX_ENV, CACHE_ENV: str(tmp_path / "cache")}

    def envbuild_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([envbuild, *args], cwd=project, capture_output=True, text=True,
                              timeout=120, env=env, check=False)

    for args in (("data", "add", "data/train.csv", "data/images"), ("nix", "generate")):
        assert envbuild_run(*args).returncode == 0, envbuild_run(*args).stderr
    text = (project / "flake.nix").read_text()
    assert 'src = ./. + "/data/images/sub/two.png";' in text
    build = ("nix", "build", "data", "--system", "x86_64-linux", "--nixpkgs", str(STAND_IN))
    assert envbuild_run(*build).returncode == 0, envbuild_run(*build).stderr
    (project / "data" / "images" / "sub" / "two.png").write_bytes(b"\x89PNG twO")
    failed = envbuild_run(*build)
    assert failed.returncode == 7, failed.stderr
    assert "hash mismatch in data/images/sub/two.png" in failed.stderr


def test_nix_sees_the_dockerfiles_wheels(nix: str, project: Path, churn: Bundle) -> None:
    """Done-when, as Nix evaluates it: the flake's x86_64-linux wheels (file, sha256) are the
    ones the linux/amd64 image's Dockerfile installs (its wheels/requirements.txt)."""
    dockerfile = pytest.importorskip("envbuild.generate.dockerfile")
    lines = dockerfile.render_wheel_requirements(churn, "linux/amd64").decode().splitlines()
    installs = {line.rsplit("--hash=sha256:", 1)[1] for line in lines if not line.startswith("#")}
    files = {w.name for _, w in dockerfile.image_wheels(churn, "linux/amd64")}
    seen = json.loads(ok(nix_eval_argv(project, "envbuild.wheels.x86_64-linux",
                                       options=OPTIONS, override_nixpkgs=STAND_IN)))
    assert {w["file"] for w in seen} == files
    assert {w["hash"] for w in seen} == {sri_sha256(h) for h in installs}


def test_flake_lock_matches_flake_nix(nix: str, project: Path) -> None:
    """Nix accepts the generated flake.lock as it is: no re-lock, so no network, is needed."""
    before = (project / "flake.lock").read_bytes()
    ok(["nix", "--extra-experimental-features", "nix-command flakes", "--option",
        "build-users-group", "", "--option", "download-attempts", "1", "--option",
        "connect-timeout", "2", "flake", "lock", "--no-update-lock-file", f"path:{project}"])
    assert (project / "flake.lock").read_bytes() == before


def test_image_is_laid_out_as_the_dockerfile(nix: str, project: Path, churn: Bundle) -> None:
    """The image's config (command, port, health check, user, working directory) is the
    Dockerfile's, and its files sit where the Dockerfile puts them."""
    dockerfile = pytest.importorskip("envbuild.generate.dockerfile")
    image = churn.lock.image
    config = json.loads(ok(nix_eval_argv(project, "packages.x86_64-linux.image.config",
                                         options=OPTIONS, override_nixpkgs=STAND_IN)))
    config = json.loads(config) if isinstance(config, str) else config  # the stand-in: JSON
    assert config["Cmd"] == list(image.cmd or ("python",))
    assert config["WorkingDir"] == dockerfile.WORKDIR
    assert config["User"] == f"{dockerfile.UID}:{dockerfile.UID}"
    if image.port is not None:
        assert config["ExposedPorts"] == {f"{image.port}/tcp": {}}
        assert config["Healthcheck"]["Test"][1:] == dockerfile._healthcheck(
            image.port, image.healthcheck or "/healthz")
    # The image's one content: the linkFarm of data, model and code; built here for real.
    root_drv = json.loads(ok([*nix_eval_argv(project, "packages.x86_64-linux.image.contents",
                                             options=OPTIONS, override_nixpkgs=STAND_IN),
                              "--apply", "cs: (builtins.head cs).drvPath"]))
    out = Path(ok(["nix-store", "--option", "build-users-group", "", "--option", "sandbox",
                   "false", "--option", "substituters", "", "--realise", root_drv]).strip())
    assert (out / "srv" / "data" / "train.csv").is_file()
    assert (out / "opt" / "model" / "MLmodel").is_file()  # a NAR-checked directory input
    for code in image.code:
        assert (out / "srv" / code).exists()
