"""`envbuild lock` pins the base image through a real registry (docker-registry on loopback).

Each test resolves a one-package project with uv against the real package index, then pins the
base image over the registry's HTTP API, exactly as a user's `envbuild lock` does.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

WRITTEN = ("envbuild.lock", "pylock.toml", "requirements.txt")


def write_project(project: Path, base: str) -> Path:
    project.mkdir(parents=True, exist_ok=True)
    (project / "requirements.in").write_text("six==1.16.0\n")
    (project / "envbuild.toml").write_text(
        'name = "regtest"\npython = "3.11"\nrequirements = ["requirements.in"]\n'
        f'[image]\nbase = "{base}"\n')
    return project


@pytest.fixture(autouse=True)
def _uv(tool: Callable[[str], str]) -> None:
    tool("uv")  # the default resolver: the venv's uv wheel, or one on PATH


def lock(project: Path) -> subprocess.CompletedProcess[str]:
    # A timeout well above a one-package resolve: a hang fails the test instead of the run.
    return subprocess.run(
        [sys.executable, "-m", "envbuild.cli.main", "-C", str(project), "lock", "--json"],
        check=False, capture_output=True, text=True, timeout=300,
    )


def locked_base(project: Path) -> str:
    return str(tomllib.loads((project / "envbuild.lock").read_text())["image"]["base"])


def error_lines(stderr: str) -> tuple[str, str]:
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    hints = [line for line in stderr.splitlines() if line.startswith("hint: ")]
    assert len(errors) == 1 and len(hints) == 1, stderr
    return errors[0], hints[0]


def assert_nothing_written(project: Path) -> None:
    assert [name for name in WRITTEN if (project / name).exists()] == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_lock_pins_the_digest_the_registry_reports(
    tmp_path: Path, pushed_image: tuple[str, str],
) -> None:
    reference, digest = pushed_image
    repository = reference.rsplit(":", 1)[0]  # 127.0.0.1:5000/<repo>
    project = write_project(tmp_path, reference)
    result = lock(project)
    assert result.returncode == 0, result.stderr
    assert locked_base(project) == f"{repository}@{digest}"
    payload = json.loads(result.stdout)
    assert payload["ok"] is True and payload["base_image"] == f"{repository}@{digest}"
    text = (project / "envbuild.lock").read_text()
    assert reference in text  # the tag asked for is kept beside the pin

    # Unchanged inputs: the pin is kept, nothing is resolved again.
    again = lock(project)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["resolved"] is False
    assert (project / "envbuild.lock").read_text() == text


def test_a_tag_the_registry_lacks_is_a_lock_error(
    tmp_path: Path, pushed_image: tuple[str, str],
) -> None:
    reference, _ = pushed_image
    missing = reference.rsplit(":", 1)[0] + f":no-such-tag-{uuid.uuid4().hex[:8]}"
    project = write_project(tmp_path, missing)
    result = lock(project)
    assert result.returncode == 4, result.stderr
    error, hint = error_lines(result.stderr)
    assert missing in error and "404" in error, error
    assert len(hint) > len("hint: ")
    assert json.loads(result.stdout) == {
        "ok": False, "exit_code": 4, "error": error.removeprefix("error: "),
        "hint": hint.removeprefix("hint: "),
    }
    assert_nothing_written(project)


def test_an_unreachable_registry_is_a_network_error(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    image = f"{address}/envbuild/nothing:latest"
    project = write_project(tmp_path, image)
    result = lock(project)  # returns: connection refused is immediate, no retry loop
    assert result.returncode == 8, result.stderr
    error, hint = error_lines(result.stderr)
    assert "cannot reach registry" in error and address in error, error
    assert image in error, error
    assert "hint: " in hint
    assert json.loads(result.stdout)["exit_code"] == 8
    assert_nothing_written(project)


def test_the_debootstrap_base_image_locks_by_digest(
    tmp_path: Path, base_image: str, registry: str,
    registry_digest: Callable[[str, str, str], str | None], tool: Callable[[str], str],
) -> None:
    repository_ref, tag = base_image.rsplit(":", 1)
    repository = repository_ref.removeprefix(f"{registry}/")
    digest = registry_digest(registry, repository, tag)
    assert digest is not None
    by_tag = write_project(tmp_path / "by-tag", base_image)
    result = lock(by_tag)
    assert result.returncode == 0, result.stderr
    assert locked_base(by_tag) == f"{repository_ref}@{digest}"
    assert json.loads(result.stdout)["base_image"] == f"{repository_ref}@{digest}"

    # A spec that already names the digest locks to the same pin (the registry confirms it).
    by_digest = write_project(tmp_path / "by-digest", f"{repository_ref}@{digest}")
    result = lock(by_digest)
    assert result.returncode == 0, result.stderr
    assert locked_base(by_digest) == f"{repository_ref}@{digest}"

    # A second client agrees on the digest (skopeo, installed by scripts/setup.sh).
    skopeo = subprocess.run(
        [tool("skopeo"), "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
         f"docker://{base_image}"],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert skopeo.returncode == 0, skopeo.stderr
    assert skopeo.stdout.strip() == digest
