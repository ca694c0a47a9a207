"""`envbuild lock` on a project with [conda]: conda-lock.yml next to pylock.toml, its digest in
envbuild.lock and the bundle id, the `pip:` list in pylock.toml with hashes, and the stale check.
The conda side runs against the tests' local channel (no conda channel is reachable here);
the pip side against the real package index, as the other lock tests do."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("rattler")
pytest.importorskip("conda_lock")

from envbuild.files import sha256_file  # noqa: E402
from tests.conda.channel import build_channel  # noqa: E402
from tests.conda.fixtures import PACKAGES  # noqa: E402


def envbuild(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "envbuild.cli.main", "-C", str(project), *args],
                          capture_output=True, text=True, timeout=600)


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
