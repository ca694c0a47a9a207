"""A base image in a private registry: a real docker-registry with htpasswd logins, on loopback.

The registry answers 401 with a Basic challenge to anyone without the login; `resolve_digest`
(what `envbuild lock` and `build` ask the registry) must find the login in the auth file that
`podman login` / `docker login` write, and say what to do when it has none or a wrong one.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from envbuild.errors import LockError
from envbuild.lock.registry import ImageRef, resolve_digest
from tests.integration.conftest import missing, push_tiny_image, require_tool

pytestmark = pytest.mark.integration

USER, PASSWORD = "ci", "s3cret-" + uuid.uuid4().hex[:8]


def _bcrypt(password: str) -> str:
    """An htpasswd line's hash: bcrypt, the only kind docker-registry reads (libxcrypt's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:  # Python 3.13 dropped it
            missing("the crypt module (to write a bcrypt htpasswd) is not in this Python")
    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
    if not hashed or not hashed.startswith("$2"):
        missing("this libcrypt cannot make bcrypt hashes")
    return hashed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A registry that needs a login, holding one image; yields (reference, its digest)."""
    exe = require_tool("docker-registry")
    root = tmp_path_factory.mktemp("private-registry")
    (root / "htpasswd").write_text(f"{USER}:{_bcrypt(PASSWORD)}\n")
    host = f"127.0.0.1:{_free_port()}"
    (root / "config.yml").write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root / "data"}
http:
  addr: {host}
  secret: envbuild-test-only
auth:
  htpasswd:
    realm: envbuild-test
    path: {root / "htpasswd"}
""")
    log = open(root / "registry.log", "wb")  # noqa: SIM115 (closed at teardown)
    proc = subprocess.Popen([exe, "serve", str(root / "config.yml")], stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://{host}/v2/", timeout=1).status_code == 401:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the private registry never answered: {(root / 'registry.log').read_text()}")
        if proc.poll() is not None:
            pytest.fail(f"docker-registry exited: {(root / 'registry.log').read_text()}")
        with httpx.Client(auth=(USER, PASSWORD), timeout=30) as client:
            digest = push_tiny_image(client, f"http://{host}", "team/base", "1.0")
        yield f"{host}/team/base:1.0", digest
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def auth_file(path: Path, host: str, user: str, password: str) -> Path:
    """What `podman login HOST` writes."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return path


@pytest.fixture
def no_logins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No auth file anywhere envbuild looks, whatever this machine's user has."""
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))


def resolve(reference: str) -> str:
    with httpx.Client(timeout=30) as client:
        return resolve_digest(ImageRef.parse(reference), client=client)


def test_the_login_from_the_auth_file_pins_the_private_image(
        private_registry: tuple[str, str], no_logins: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    reference, digest = private_registry
    host = reference.split("/", 1)[0]
    monkeypatch.setenv("REGISTRY_AUTH_FILE",
                       str(auth_file(tmp_path / "auth.json", host, USER, PASSWORD)))
    assert resolve(reference) == digest
    assert resolve(f"{reference.split(':1.0')[0]}@{digest}") == digest  # by digest too


def test_without_a_login_the_refusal_says_how_to_log_in(
        private_registry: tuple[str, str], no_logins: None) -> None:
    reference, _ = private_registry
    with pytest.raises(LockError) as err:
        resolve(reference)
    assert "HTTP 401, anonymously" in str(err.value)
    assert "docker login" in err.value.hint and "REGISTRY_AUTH_FILE" in err.value.hint


def test_a_wrong_password_names_the_user_and_the_file_not_the_password(
        private_registry: tuple[str, str], no_logins: None, tmp_path: Path) -> None:
    reference, _ = private_registry
    host = reference.split("/", 1)[0]
    (tmp_path / "docker").mkdir()
    config = auth_file(tmp_path / "docker" / "config.json", host, USER, "not-the-password")
    with pytest.raises(LockError) as err:
        resolve(reference)
    message = f"{err.value} {err.value.hint}"
    assert f"'{USER}' from {config}" in message and "log in again" in message
    assert "not-the-password" not in message


def test_a_credential_helper_named_by_the_docker_config_gives_the_login(
        private_registry: tuple[str, str], no_logins: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """docker's credential-helper protocol (`docker-credential-<name> get`, the registry on
    stdin, JSON on stdout), spoken by a script standing in for docker-credential-pass."""
    reference, digest = private_registry
    host = reference.split("/", 1)[0]
    helper = tmp_path / "bin" / "docker-credential-teststore"
    helper.parent.mkdir()
    helper.write_text(f"""#!/bin/sh
read -r server
[ "$1" = get ] && [ "$server" = "{host}" ] || {{ echo "credentials not found"; exit 1; }}
printf '{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASSWORD}"}}' "$server"
""")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:{os.environ['PATH']}")
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(
        json.dumps({"auths": {host: {}}, "credHelpers": {host: "teststore"}}))
    assert resolve(reference) == digest
