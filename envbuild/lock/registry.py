"""Resolve an image tag to its manifest digest through the registry HTTP API (OCI distribution).

On 401 it answers the registry's challenge: Bearer (fetch a token from the realm, retry), with
the login of `docker login` / `podman login` when there is one (envbuild/lock/registry_auth.py)
and anonymously otherwise, or Basic with that login. Plain HTTP for a registry on loopback,
HTTPS elsewhere.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from envbuild.errors import LockError, NetworkError
from envbuild.lock.registry_auth import Credentials, HelperError, registry_credentials

if TYPE_CHECKING:
    import httpx

DOCKER_HUB = "registry-1.docker.io"
MANIFEST_TYPES = ", ".join([  # noqa: FLY002 - one media type a line
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$")


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageRef:
    registry: str  # host[:port]
    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        """Parse `[registry/]repo[:tag][@sha256:...]` as docker does (docker.io by default)."""
        rest, _, digest = ref.partition("@")
        if digest and not _DIGEST.match(digest):
            raise ValueError(f"{ref!r}: the digest must be sha256: and 64 hex digits")
        first, slash, remainder = rest.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, remainder
        else:
            registry, path = DOCKER_HUB, rest
            if "/" not in path:
                path = "library/" + path
        name, colon, tag = path.rpartition(":") if ":" in path else (path, "", "")
        if not colon:
            name, tag = path, ""
        if not _REPOSITORY.match(name):
            raise ValueError(f"{ref!r}: {name!r} is not a valid repository name")
        if not tag and not digest:
            tag = "latest"
        return cls(registry=registry, repository=name, tag=tag or None, digest=digest or None)

    @property
    def scheme(self) -> str:
        return "http" if _LOOPBACK.match(self.registry) else "https"

    @property
    def display_registry(self) -> str:
        return "docker.io" if self.registry == DOCKER_HUB else self.registry

    def pinned(self, digest: str) -> str:
        """`registry/repo@sha256:...` (Docker Hub images keep their short form)."""
        repo = self.repository
        if self.registry == DOCKER_HUB:
            return f"{repo.removeprefix('library/')}@{digest}"
        return f"{self.registry}/{repo}@{digest}"

    def __str__(self) -> str:
        base = f"{self.display_registry}/{self.repository}"
        return base + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def _refused_hint(ref: ImageRef, credentials: Credentials | None) -> str:
    if credentials is not None:
        return (f"log in again (`docker login {ref.display_registry}` or `podman login`), or "
                "check the image name and that this user may pull it")
    return (f"if the image is private, log in: `docker login {ref.display_registry}` or "
            "`podman login` (read from REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, "
            "~/.docker/config.json, and the credential helpers they name); else check its name")


def _bearer_params(header: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


_UNSET: Any = object()


def resolve_digest(ref: ImageRef, *, client: httpx.Client,
                   credentials: Credentials | None = _UNSET) -> str:
    """The manifest digest the registry serves for `ref`'s tag (an index digest for multi-arch).

    `credentials`: the login to answer a challenge with; by default the one the auth files hold
    for the registry (none: anonymous).
    """
    import httpx

    if credentials is _UNSET:
        try:
            credentials = registry_credentials(ref.registry)
        except HelperError as exc:
            raise LockError(f"no login for registry {ref.display_registry}: {exc}",
                            hint="install the helper or log in again (`docker login`, "
                                 "`podman login`)") from None
    basic = (credentials.username, credentials.password) if credentials else None
    reference = ref.digest or ref.tag
    url = f"{ref.scheme}://{ref.registry}/v2/{ref.repository}/manifests/{reference}"
    headers = {"Accept": MANIFEST_TYPES}
    try:
        resp = client.get(url, headers=headers)
        challenge = resp.headers.get("www-authenticate", "")
        if resp.status_code == 401 and challenge.lower().startswith("bearer"):
            params = _bearer_params(challenge)
            token_resp = client.get(
                params.get("realm", ""),
                params={k: v for k, v in params.items() if k in ("service", "scope")}
                or {"scope": f"repository:{ref.repository}:pull"},
                auth=basic,
            )
            if token_resp.status_code == 200:
                body = token_resp.json()
                token = body.get("token") or body.get("access_token")
                resp = client.get(url, headers={**headers, "Authorization": f"Bearer {token}"})
        elif resp.status_code == 401 and challenge.lower().startswith("basic") and basic:
            resp = client.get(url, headers=headers, auth=basic)
    except httpx.HTTPError as exc:
        reason = str(exc).split("] ", 1)[-1] or type(exc).__name__  # drop "[Errno 111] "
        raise NetworkError(
            f"cannot reach registry {ref.display_registry} for base image {ref}: {reason}",
            hint="check the registry address and that it is running; once pinned, the digest "
            "is kept and the registry is not asked again while image.base is unchanged",
        ) from None
    if resp.status_code in (401, 403):
        raise LockError(
            f"registry {ref.display_registry} refused access to base image {ref} "
            f"(HTTP {resp.status_code}"
            + (f", with the login of {credentials.username!r} from {credentials.source})"
               if credentials else ", anonymously)"),
            hint=_refused_hint(ref, credentials),
        )
    if resp.status_code == 404:
        what = f"digest {ref.digest}" if ref.digest else f"tag {ref.tag!r}"
        raise LockError(
            f"base image {ref} not found in registry {ref.display_registry}: it has no "
            f"{what} in {ref.repository} (HTTP 404)",
            hint=f"check the repository and {'digest' if ref.digest else 'tag'}, "
            "e.g. with `skopeo inspect`",
        )
    if resp.status_code != 200:
        raise NetworkError(
            f"registry {ref.display_registry} answered HTTP {resp.status_code} for {ref}",
            hint="try again later, or check the registry's logs",
        )
    digest = resp.headers.get("docker-content-digest") or (
        "sha256:" + hashlib.sha256(resp.content).hexdigest()
    )
    if ref.digest and digest != ref.digest:
        raise LockError(f"registry serves {digest} for {ref}", hint="check the pinned digest")
    return digest
