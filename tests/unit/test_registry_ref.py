from __future__ import annotations

import pytest

from envbuild.lock.registry import DOCKER_HUB, ImageRef, _bearer_params


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "scheme"),
    [
        ("python:3.11-slim", DOCKER_HUB, "library/python", "3.11-slim", "https"),
        ("debian", DOCKER_HUB, "library/debian", "latest", "https"),
        ("user/app:1", DOCKER_HUB, "user/app", "1", "https"),
        ("127.0.0.1:5000/envbuild/python:3.11", "127.0.0.1:5000", "envbuild/python", "3.11", "http"),
        ("localhost:5000/app", "localhost:5000", "app", "latest", "http"),
        ("ghcr.io/org/img:v2", "ghcr.io", "org/img", "v2", "https"),
    ],
)
def test_parse(text: str, registry: str, repository: str, tag: str, scheme: str) -> None:
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.scheme) == (registry, repository, tag, scheme)


def test_pinned_forms() -> None:
    digest = "sha256:" + "a" * 64
    assert ImageRef.parse("python:3.11").pinned(digest) == f"python@{digest}"
    assert ImageRef.parse("127.0.0.1:5000/p:1").pinned(digest) == f"127.0.0.1:5000/p@{digest}"
    assert ImageRef.parse(f"ghcr.io/o/i@{digest}").digest == digest


@pytest.mark.parametrize("text", ["Bad/Name:1", "x@sha256:short", "a//b"])
def test_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        ImageRef.parse(text)


def test_bearer_challenge() -> None:
    header = 'Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"'
    assert _bearer_params(header) == {"realm": "https://auth.example/token", "service": "reg",
                                      "scope": "repository:a:pull"}
