"""`envbuild lock` on a project with [conda]: conda-lock.yml next to pylock.toml, its digest in
envbuild.lock and the bundle id, the `pip:` list in pylock.toml with hashes, and the stale check.
The conda side runs against the tests' local channel (no conda channel is reachable here);
the pip side against the real package index, as the other lock tests do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conda import require_module

require_module("rattler")
require_module("conda_lock")

from envbuild.files import sha256_file
from envbuild.tools import Runner
from tests.conda.channel import build_channel, build_package, index_channel
from tests.conda.fixtures import PACKAGES


def envbuild(project: Path, *args: str,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "envbuild.cli.main", "-C", str(project), *args],
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    channel = build_channel(tmp_path / "channel", list(PACKAGES))
    root = tmp_path / "project"
    root.mkdir()
    (root / "envbuild.toml").write_text(
        'name = "condademo"\npython = "3.11"\nrequirements = ["requirements.in"]\n'
        '[conda]\nenvironment = "environment.yml"\n')
    (root / "requirements.in").write_text("six==1.16.0\n")
    (root / "environment.yml").write_text(
        f"name: demo\nchannels:\n  - {channel.as_uri()}\ndependencies:\n  - tinytool >=2\n"
        "  - pip:\n      - idna==3.10\n")
    return root


def test_lock_writes_conda_lock_into_the_bundle(project: Path) -> None:
    first = envbuild(project, "lock")
    assert first.returncode == 0, first.stderr
    files = {p.name: p.read_bytes() for p in project.iterdir() if p.is_file()}
    lock = tomllib.loads((project / "envbuild.lock").read_text())
    conda = lock["conda"]
    assert conda["lock_file"] == "conda-lock.yml"
    assert conda["lock_digest"] == sha256_file(project / "conda-lock.yml")
    assert conda["platforms"] == ["linux-64", "linux-aarch64"] and conda["packages"] == 4
    assert "environment.yml" in lock["inputs"]["files"]
    reqs = (project / "requirements.txt").read_text()
    assert "idna==3.10" in reqs and "six==1.16.0" in reqs and "--hash=sha256:" in reqs

    # Locking again changes no byte; the gate says fresh.
    again = envbuild(project, "lock")
    assert again.returncode == 0, again.stderr
    assert {p.name: p.read_bytes() for p in project.iterdir() if p.is_file()} == files
    assert envbuild(project, "lock", "--check").returncode == 0

    # An edited conda-lock.yml is stale, named; a re-lock restores the same bytes and bundle.
    (project / "conda-lock.yml").write_text(files["conda-lock.yml"].decode() + "# edit\n")
    check = envbuild(project, "lock", "--check")
    assert check.returncode == 5 and "conda-lock.yml: edited after locking" in check.stderr
    assert envbuild(project, "lock").returncode == 0
    assert (project / "envbuild.lock").read_bytes() == files["envbuild.lock"]

    # A changed environment file is stale too, and a new conda pin changes the bundle id.
    env = project / "environment.yml"
    env.write_text(env.read_text().replace("tinytool >=2", "tinylib"))
    check = envbuild(project, "lock", "--check")
    assert check.returncode == 5 and "environment.yml: changed since the lock" in check.stderr
    assert envbuild(project, "lock").returncode == 0
    relocked = tomllib.loads((project / "envbuild.lock").read_text())
    assert relocked["conda"]["packages"] == 2
    assert relocked["bundle"]["id"] != lock["bundle"]["id"]


def test_conda_image_repeats_and_a_tampered_package_stops_it(
        tmp_path: Path, tool: Callable[[str], str], base_image: str) -> None:
    """The Done-when of the conda issue, through the CLI: lock for two platforms against the
    local channel, build the linux-64 image twice (no layer cache the second time) and get the
    same image id; then a package changed in the channel stops the build, named."""
    tool("buildah")
    channel = build_channel(tmp_path / "channel", list(PACKAGES))
    project = tmp_path / "project"
    project.mkdir()
    (project / "envbuild.toml").write_text(
        'name = "condaimg"\npython = "3.11"\nrequirements = ["requirements.in"]\n'
        f'[image]\nbase = "{base_image}"\n[conda]\nenvironment = "environment.yml"\n')
    (project / "requirements.in").write_text("six==1.16.0\n")
    (project / "environment.yml").write_text(
        f"channels:\n  - {channel.as_uri()}\ndependencies:\n  - tinytool >=2\n")
    assert (r := envbuild(project, "lock")).returncode == 0, r.stderr
    env = {"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")}
    first = envbuild(project, "conda-build", "--json", env=env)
    assert first.returncode == 0, first.stderr
    image = json.loads(first.stdout)["image_id"]
    second = envbuild(project, "conda-build", "--no-cache", "--json",
                      env={"ENVBUILD_CACHE_DIR": str(tmp_path / "cache2")})
    assert second.returncode == 0, second.stderr
    try:
        assert json.loads(second.stdout)["image_id"] == image
        runner = Runner()
        ctr = runner.run(["buildah", "from", image]).stdout.strip()
        try:
            script = ("cat /opt/conda/lib/tinylib.txt && "
                      "python -c 'import six; print(six.__version__)'")
            out = runner.run(["buildah", "run", "--isolation", "chroot", ctr, "--", "sh", "-c",
                              script]).stdout
        finally:
            runner.run(["buildah", "rm", ctr], check=False)
        assert out == "tinylib linux-64\n1.16.0\n"
    finally:
        Runner().run(["buildah", "rmi", image], check=False)

    tinylib = next(p for p in PACKAGES if p.name == "tinylib" and p.subdir == "linux-64")
    for old in (channel / "linux-64").glob("tinylib-*"):
        old.unlink()
    build_package(replace(tinylib, files={"lib/tinylib.txt": "evil\n"}), channel)
    index_channel(channel)
    tampered = envbuild(project, "conda-build", env={"ENVBUILD_CACHE_DIR": str(tmp_path / "c3")})
    assert tampered.returncode == 7, tampered.stderr
    assert "conda package tinylib 1.0 (linux-64): sha256 mismatch" in tampered.stderr


def conda_only_project(tmp_path: Path, name: str, conda_dep: str) -> tuple[Path, Path]:
    """A project whose whole environment is environment.yml: one conda package from the local
    channel, six from pip. Returns the project and the channel."""
    channel = build_channel(tmp_path / "channel", list(PACKAGES))
    project = tmp_path / "project"
    project.mkdir()
    (project / "envbuild.toml").write_text(
        f'name = "{name}"\n[conda]\nenvironment = "environment.yml"\n')
    (project / "environment.yml").write_text(
        f"channels: [{channel.as_uri()}]\ndependencies:\n  - {conda_dep}\n"
        "  - pip:\n      - six==1.16.0\n")
    return project, channel


def test_a_conda_only_project_needs_no_requirement_file(tmp_path: Path) -> None:
    """environment.yml alone: conda packages locked, its pip: list in pylock.toml."""
    project, _ = conda_only_project(tmp_path, "condaonly", "tinylib")
    assert (r := envbuild(project, "lock")).returncode == 0, r.stderr
    assert "six==1.16.0 \\\n    --hash=sha256:" in (project / "requirements.txt").read_text()
    assert tomllib.loads((project / "envbuild.lock").read_text())["conda"]["packages"] == 2
    assert envbuild(project, "lock", "--check").returncode == 0
    prefix = tmp_path / "env"
    assert (r := envbuild(project, "conda-install", str(prefix))).returncode == 0, r.stderr
    assert (prefix / "lib/tinylib.txt").read_text() == "tinylib linux-64\n"
    nix = envbuild(project, "nix", "generate")
    assert nix.returncode == 4 and "does not support conda environments yet" in nix.stderr
    assert not (project / "flake.nix").exists()
    for argv in (("generate",), ("build",)):  # the Dockerfile target would leave conda out
        docker = envbuild(project, *argv)
        assert docker.returncode == 4, docker.stderr
        assert "`envbuild generate` / `envbuild build` (the Dockerfile target) does not support " \
            "conda environments yet" in docker.stderr and "envbuild conda-build" in docker.stderr
    assert not (project / ".envbuild" / "bundle").exists()


def test_a_pip_side_change_keeps_the_conda_pins(tmp_path: Path) -> None:
    """The channel gains tinytool 3.0 after locking: a re-lock for a pip change keeps 2.1,
    `lock --upgrade` takes 3.0 (as the pip side keeps its pins unless asked)."""
    project, channel = conda_only_project(tmp_path, "keep", "tinytool")
    assert (r := envbuild(project, "lock")).returncode == 0, r.stderr
    before = (project / "conda-lock.yml").read_bytes()
    tool = next(p for p in PACKAGES if p.name == "tinytool")
    build_package(replace(tool, version="3.0"), channel)
    index_channel(channel)
    (project / "envbuild.toml").write_text(
        'name = "keep"\nrequirements = ["requirements.in"]\n[conda]\n'
        'environment = "environment.yml"\n')
    (project / "requirements.in").write_text("idna==3.10\n")
    assert (r := envbuild(project, "lock")).returncode == 0, r.stderr
    assert (project / "conda-lock.yml").read_bytes() == before
    assert "idna==3.10" in (project / "requirements.txt").read_text()
    before_upgrade = tmp_path / "before-upgrade"
    shutil.copytree(project, before_upgrade)
    assert (r := envbuild(project, "lock", "--upgrade")).returncode == 0, r.stderr
    assert "tinytool-3.0-" in (project / "conda-lock.yml").read_text()

    # `diff` and `show` read the conda packages from conda-lock.yml, per platform.
    diff = envbuild(project, "diff", str(before_upgrade), str(project), "--json")
    assert diff.returncode == 0, diff.stderr
    conda = {c["key"]: (c["kind"], c["old"], c["new"])
             for c in json.loads(diff.stdout)["changes"] if c["section"] == "conda"}
    assert conda == {"tinytool (linux-64)": ("upgraded", "2.1", "3.0"),
                     "tinytool (linux-aarch64)": ("upgraded", "2.1", "3.0")}
    text = envbuild(project, "diff", str(before_upgrade), str(project)).stdout
    assert "conda: tinytool (linux-64) upgraded 2.1 -> 3.0" in text
    shown = envbuild(project, "show")
    assert shown.returncode == 0, shown.stderr
    assert "conda       " in shown.stdout and "  tinytool=3.0=" in shown.stdout
    listed = json.loads(envbuild(project, "show", "--json").stdout)["conda"]["packages"]
    assert {(p["name"], p["version"]) for p in listed} == {("tinytool", "3.0"), ("tinylib", "1.0")}
