"""Registry logins from docker / podman auth files, and the challenge answers that use them."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import httpx
import pytest

from envbuild.errors import LockError
from envbuild.lock.registry import ImageRef, resolve_digest
from envbuild.lock.registry_auth import (
    Credentials,
    HelperError,
    auth_files,
    find_credentials,
    helper_for,
    helper_server,
    registry_credentials,
)

DIGEST = "sha256:" + "d" * 64


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_login_is_found_by_host_in_the_first_file_that_has_one() -> None:
    configs = [
        ("podman.json", {"auths": {"other.example": {"auth": b64("x:y")}}}),
        ("docker.json", {"auths": {"https://reg.example:5000/v2/": {"auth": b64("ci:p:ss")},
                                   "https://index.docker.io/v1/": {"auth": b64("hub:pw")}}}),
        ("later.json", {"auths": {"reg.example:5000": {"auth": b64("late:pw")}}}),
    ]
    found = find_credentials(configs, "reg.example:5000")
    assert found == Credentials(username="ci", password="p:ss", source="docker.json")
    assert "p:ss" not in repr(found)  # the password is kept out of messages
    hub = find_credentials(configs, "registry-1.docker.io")  # Docker Hub's several names
    assert hub is not None and (hub.username, hub.password) == ("hub", "pw")
    assert find_credentials(configs, "nowhere.example") is None


def test_username_and_password_fields_and_broken_entries() -> None:
    configs = [("a", {"auths": {"r.example": {"auth": "%%%not base64"}}}),
               ("b", {"auths": {"r.example": {"auth": b64("no-colon")}}}),
               ("c", {"auths": {"r.example": {"username": "u", "password": "p"}}})]
    assert find_credentials(configs, "r.example") == Credentials(username="u", password="p",
                                                                 source="c")
    assert find_credentials([("d", {"auths": []}), ("e", {})], "r.example") is None


def test_the_helper_for_a_registry_is_its_own_else_the_store() -> None:
    both = ("d.json", {"credHelpers": {"r.example": "ecr-login"}, "credsStore": "desktop"})
    assert helper_for([both], "r.example") == ("ecr-login", "d.json")
    assert helper_for([both], "other.example") == ("desktop", "d.json")
    assert helper_for([("a.json", {"auths": {}}), ("b.json", {"credsStore": "pass"})],
                      "r.example") == ("pass", "b.json")
    assert helper_for([("d.json", {"auths": {}})], "r.example") is None
    assert helper_server("registry-1.docker.io") == "https://index.docker.io/v1/"
    assert helper_server("r.example:5000") == "r.example:5000"


HELPER = """#!/bin/sh
# docker-credential-<name> protocol: `get`, the server on stdin, a JSON login on stdout.
[ "$1" = get ] || exit 3
read -r server
case "$server" in
  r.example:5000) printf '{"ServerURL":"%s","Username":"ci","Secret":"s3cret"}' "$server" ;;
  token.example) printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh"}' "$server" ;;
  broken.example) echo 'not json' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"""


@pytest.fixture
def helper_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A `docker-credential-test` speaking the helper protocol, and an env whose docker config
    names it for every registry."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "docker-credential-test"
    exe.write_text(HELPER)
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(json.dumps({"credsStore": "test"}))
    return {"DOCKER_CONFIG": str(tmp_path / "docker")}


def test_a_credential_helper_gives_the_login(helper_on_path: dict[str, str]) -> None:
    found = registry_credentials("r.example:5000", helper_on_path)
    assert found == Credentials(username="ci", password="s3cret",
                                source="docker-credential-test")
    assert registry_credentials("none.example", helper_on_path) is None  # not found: anonymous
    assert registry_credentials("token.example", helper_on_path) is None  # a token: not a login
    with pytest.raises(HelperError, match="did not answer with a login"):
        registry_credentials("broken.example", helper_on_path)


def test_a_missing_helper_is_an_error_not_anonymous(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {"r.example": "absent"}}))
    with pytest.raises(HelperError, match="docker-credential-absent is not on PATH"):
        registry_credentials("r.example", {"DOCKER_CONFIG": str(tmp_path)})


def test_the_auth_files_are_read_in_podmans_then_dockers_order(tmp_path: Path) -> None:
    env = {"REGISTRY_AUTH_FILE": str(tmp_path / "explicit.json"),
           "XDG_RUNTIME_DIR": str(tmp_path / "run"), "HOME": str(tmp_path / "home")}
    assert auth_files(env) == [tmp_path / "explicit.json",
                               tmp_path / "run" / "containers" / "auth.json",
                               tmp_path / "home" / ".docker" / "config.json"]
    assert auth_files({"DOCKER_CONFIG": str(tmp_path / "dc")}) == [
        tmp_path / "dc" / "config.json"]
    (tmp_path / "run" / "containers").mkdir(parents=True)
    (tmp_path / "run" / "containers" / "auth.json").write_text("{broken")  # skipped
    (tmp_path / "home" / ".docker").mkdir(parents=True)
    (tmp_path / "home" / ".docker" / "config.json").write_text(
        json.dumps({"auths": {"r.example": {"auth": b64("u:p")}}}))
    found = registry_credentials("r.example", env)
    assert found is not None and found.source == str(tmp_path / "home/.docker/config.json")


def registry(handler: httpx.MockTransport) -> httpx.Client:
    return httpx.Client(transport=handler)


def basic_registry(user: str, password: str) -> tuple[httpx.Client, list[str | None]]:
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        if request.headers.get("authorization") != "Basic " + b64(f"{user}:{password}"):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        return httpx.Response(200, headers={"Docker-Content-Digest": DIGEST}, content=b"{}")

    return registry(httpx.MockTransport(handle)), seen


REF = ImageRef.parse("reg.example:5000/team/base:1")


def test_a_basic_challenge_is_answered_with_the_login() -> None:
    client, seen = basic_registry("ci", "s3cret")
    login = Credentials(username="ci", password="s3cret", source="auth.json")
    assert resolve_digest(REF, client=client, credentials=login) == DIGEST
    assert seen == [None, "Basic " + b64("ci:s3cret")]  # anonymous first, then the login


@pytest.mark.parametrize("login", [None, Credentials(username="ci", password="wrong",
                                                     source="/x/auth.json")])
def test_a_refusal_says_which_login_was_tried_and_what_to_do(login: Credentials | None) -> None:
    client, _ = basic_registry("ci", "s3cret")
    with pytest.raises(LockError) as err:
        resolve_digest(REF, client=client, credentials=login)
    if login is None:
        assert "anonymously" in str(err.value) and "docker login" in err.value.hint
    else:
        assert "'ci' from /x/auth.json" in str(err.value) and "log in again" in err.value.hint
        assert "wrong" not in str(err.value) + err.value.hint


def test_a_bearer_token_is_fetched_with_the_login() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            ok = request.headers.get("authorization") == "Basic " + b64("ci:s3cret")
            assert request.url.params["scope"] == "repository:team/base:pull"
            return httpx.Response(200, json={"token": "T" if ok else "anon"})
        if request.headers.get("authorization") == "Bearer T":
            return httpx.Response(200, headers={"Docker-Content-Digest": DIGEST})
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://reg.'
                                            'example:5000/token",scope="repository:team/base:pull"'})

    client = registry(httpx.MockTransport(handle))
    login = Credentials(username="ci", password="s3cret", source="auth.json")
    assert resolve_digest(REF, client=client, credentials=login) == DIGEST
    with pytest.raises(LockError, match="anonymously"):
        resolve_digest(REF, client=registry(httpx.MockTransport(handle)), credentials=None)
