"""Credentials for a private registry, from the files `docker login` and `podman login` write.

Read in this order, the first file that has an entry for the registry wins:
`$REGISTRY_AUTH_FILE` (podman, buildah, skopeo), `$XDG_RUNTIME_DIR/containers/auth.json`
(podman's default), `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` (docker). Each holds
`{"auths": {"<registry>": {"auth": "<base64 of user:password>"}}}`; Docker Hub's key is
`https://index.docker.io/v1/`. Credential helpers (`credsStore`, `credHelpers`) keep the secret
in another program and are not run: a registry found only there is reported as such.

`find_credentials` is pure (the parsed files in, the entry out); `registry_credentials` reads
the files. Passwords never appear in messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOCKER_HUB_KEYS = ("index.docker.io", "docker.io", "registry-1.docker.io")


@dataclass(frozen=True, kw_only=True, slots=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    source: str  # the file they came from, for messages


def _host(key: str) -> str:
    """A config key as a bare host[:port]: "https://index.docker.io/v1/" -> "index.docker.io"."""
    return key.split("://", 1)[-1].split("/", 1)[0].lower()


def _names(registry: str) -> set[str]:
    registry = registry.lower()
    return set(DOCKER_HUB_KEYS) if registry in DOCKER_HUB_KEYS else {registry}


def find_credentials(configs: Sequence[tuple[str, Mapping[str, Any]]],
                     registry: str) -> Credentials | None:
    """The first login for `registry` in `configs` ((path, parsed JSON), in order)."""
    names = _names(registry)
    for source, config in configs:
        auths = config.get("auths")
        if not isinstance(auths, Mapping):
            continue
        for key, entry in auths.items():
            if _host(str(key)) not in names or not isinstance(entry, Mapping):
                continue
            if isinstance(entry.get("auth"), str) and entry["auth"]:
                try:
                    user, sep, password = base64.b64decode(entry["auth"], validate=True) \
                        .decode("utf-8").partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    continue
                if sep:
                    return Credentials(username=user, password=password, source=source)
            if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
                return Credentials(username=entry["username"], password=entry["password"],
                                   source=source)
    return None


def helper_for(configs: Sequence[tuple[str, Mapping[str, Any]]], registry: str) -> str | None:
    """The file naming a credential helper for `registry` (which envbuild does not run)."""
    names = _names(registry)
    for source, config in configs:
        helpers = config.get("credHelpers")
        if isinstance(helpers, Mapping) and any(_host(str(k)) in names for k in helpers):
            return source
        if config.get("credsStore"):
            return source
    return None


def auth_files(env: Mapping[str, str] | None = None) -> list[Path]:
    env = os.environ if env is None else env
    files = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    docker = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else (
        Path(env.get("HOME") or Path.home()) / ".docker")
    files.append(docker / "config.json")
    return files


def read_configs(env: Mapping[str, str] | None = None) -> list[tuple[str, Mapping[str, Any]]]:
    """Every auth file that exists and parses (a broken one is skipped: docker does the same)."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for path in auth_files(env):
        try:
            parsed = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(parsed, dict):
            out.append((str(path), parsed))
    return out


def registry_credentials(registry: str, env: Mapping[str, str] | None = None,
                         ) -> Credentials | None:
    return find_credentials(read_configs(env), registry)
