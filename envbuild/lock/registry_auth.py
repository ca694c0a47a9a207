"""Credentials for a private registry, from the files `docker login` and `podman login` write.

Read in this order, the first file that has an entry for the registry wins:
`$REGISTRY_AUTH_FILE` (podman, buildah, skopeo), `$XDG_RUNTIME_DIR/containers/auth.json`
(podman's default), `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` (docker). Each holds
`{"auths": {"<registry>": {"auth": "<base64 of user:password>"}}}`; Docker Hub's key is
`https://index.docker.io/v1/`. A file may instead name a credential helper for the registry
(`credHelpers: {"<registry>": "<name>"}`, or `credsStore` for all): then envbuild runs
`docker-credential-<name> get` as docker does (the registry on stdin, a JSON login on stdout).

`find_credentials` and `helper_for` are pure (the parsed files in, the entry out);
`registry_credentials` reads the files and runs a helper. Passwords never appear in messages.
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


def helper_for(configs: Sequence[tuple[str, Mapping[str, Any]]],
               registry: str) -> tuple[str, str] | None:
    """(helper name, the file naming it) for `registry`: its `credHelpers` entry, else the
    file's `credsStore`; from the first file that names one."""
    names = _names(registry)
    for source, config in configs:
        helpers = config.get("credHelpers")
        if isinstance(helpers, Mapping):
            for key, name in helpers.items():
                if _host(str(key)) in names and isinstance(name, str) and name:
                    return name, source
        store = config.get("credsStore")
        if isinstance(store, str) and store:
            return store, source
    return None


def helper_server(registry: str) -> str:
    """What a helper is asked for: docker's key for Docker Hub, the host[:port] otherwise."""
    return "https://index.docker.io/v1/" if registry.lower() in DOCKER_HUB_KEYS else registry


def run_helper(name: str, registry: str, source: str) -> Credentials | None:
    """`docker-credential-<name> get`; None when the helper has no login for the registry.

    A helper that is missing, fails otherwise or answers nonsense raises HelperError: a login
    was configured and could not be had, which must not pass for "no login".
    """
    import shutil
    import subprocess

    exe = shutil.which(f"docker-credential-{name}")
    if exe is None:
        raise HelperError(f"{source} names the credential helper {name!r}, but "
                          f"docker-credential-{name} is not on PATH")
    try:
        proc = subprocess.run([exe, "get"], input=helper_server(registry), capture_output=True,
                              text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HelperError(f"docker-credential-{name} get failed: {exc}") from None
    if proc.returncode != 0:
        if "credentials not found" in (proc.stdout + proc.stderr).lower():
            return None
        raise HelperError(f"docker-credential-{name} get exited {proc.returncode}: "
                          f"{(proc.stderr or proc.stdout).strip()[:200]}")
    try:
        answer = json.loads(proc.stdout)
        user, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError):
        raise HelperError(f"docker-credential-{name} get did not answer with a login "
                          "(JSON with Username and Secret)") from None
    if not isinstance(user, str) or not isinstance(secret, str) or user == "<token>":
        return None  # an identity token (OAuth refresh token): not a password login
    return Credentials(username=user, password=secret, source=f"docker-credential-{name}")


class HelperError(Exception):
    """A configured credential helper could not give its login."""


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
    """The login for `registry`: an entry in the auth files, else what their helper gives."""
    configs = read_configs(env)
    found = find_credentials(configs, registry)
    if found is not None:
        return found
    helper = helper_for(configs, registry)
    return run_helper(helper[0], registry, helper[1]) if helper is not None else None
