"""The Dockerfile, .dockerignore and wheels/requirements.txt of an image bundle. Pure.

Inputs are the checked Bundle (envbuild.lock + pylock.toml) and a few options; output is bytes.
No file access, clock or environment: the same lock gives the same bytes on any machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from envbuild.errors import LockError
from envbuild.lock.loaded import Bundle
from envbuild.lock.platforms import Target
from envbuild.lock.pylock import LockedPackage, Wheel
from envbuild.templating import render

VENV = "/opt/venv"
WORKDIR = "/srv"
MODEL_DIR = "/opt/model"
USER = "app"
UID = 10001  # fixed, so file ownership and `USER` are the same in every build
SBOM_FILE = "sbom.cdx.json"
SBOM_IN_IMAGE = "/usr/share/envbuild/sbom.cdx.json"
LABEL_PREFIX = "org.opencontainers.image"


@dataclass(frozen=True, kw_only=True, slots=True)
class DockerOptions:
    platform: str = "linux/amd64"
    # The git commit of the project's code, when it is a git checkout: an OCI label (config
    # only, no layer changes), so two commits with the same code share every layer.
    source_commit: str | None = None


def target_for(bundle: Bundle, platform: str) -> Target:
    for target in bundle.targets:
        if target.platform == platform:
            return target
    locked = ", ".join(t.platform for t in bundle.targets) or "none"
    raise LockError(f"the lock has no packages for {platform} (locked: {locked})",
                    hint=f'add "{platform}" to platforms in the spec and run `envbuild lock`')


def image_wheels(bundle: Bundle, platform: str) -> tuple[tuple[LockedPackage, Wheel], ...]:
    return bundle.python.wheels_for(target_for(bundle, platform))


def docker_string(value: str) -> str:
    """A double-quoted Dockerfile word: `"`, `\\` and `$` escaped (LABEL expands variables);
    line breaks become spaces, as a Dockerfile line cannot hold them."""
    flat = " ".join(value.splitlines())
    escaped = flat.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def image_labels(bundle: Bundle, options: DockerOptions) -> dict[str, str]:
    """OCI labels: what was built, from which lock and commit. Sorted by key when rendered."""
    lock = bundle.lock
    labels = {
        f"{LABEL_PREFIX}.title": lock.image.name,
        f"{LABEL_PREFIX}.version": lock.short_id,
        f"{LABEL_PREFIX}.base.name": lock.image.base_ref or "",
        f"{LABEL_PREFIX}.base.digest": (lock.image.base or "").rpartition("@")[2],
        "dev.envbuild.bundle.id": lock.bundle_id,
        "dev.envbuild.lock.digest": lock.python.lock_digest,
        "dev.envbuild.platform": options.platform,
    }
    if options.source_commit:
        labels[f"{LABEL_PREFIX}.revision"] = options.source_commit
    model = lock.model
    if model.get("name"):
        labels["dev.envbuild.model.name"] = str(model["name"])
    if model.get("version") is not None:
        labels["dev.envbuild.model.version"] = str(model["version"])
    return labels


def model_env(model: Mapping[str, Any]) -> dict[str, str]:
    """The model layer's environment: where the app finds the locked model, and which one it
    is. Empty when the lock pins no model (and then there is no model layer)."""
    if not model:
        return {}
    env = {"ENVBUILD_MODEL_DIR": MODEL_DIR}
    if model.get("name"):
        env["ENVBUILD_MODEL_NAME"] = str(model["name"])
    if model.get("version") is not None:
        env["ENVBUILD_MODEL_VERSION"] = str(model["version"])
    if model.get("digest"):
        env["ENVBUILD_MODEL_DIGEST"] = str(model["digest"])
    return env


def _healthcheck(port: int, path: str) -> list[str]:
    # Exec form through the image's own Python: the base has no curl, and no shell is needed.
    url = f"http://127.0.0.1:{port}{path}"
    code = f"import urllib.request; urllib.request.urlopen({url!r}, timeout=4)"
    return ["python", "-c", code]


def render_dockerfile(bundle: Bundle, options: DockerOptions) -> bytes:
    lock = bundle.lock
    if not lock.image.base:
        raise LockError("the lock pins no base image, so there is no image to generate",
                        hint="set [image] base in the spec and run `envbuild lock`")
    target_for(bundle, options.platform)  # fail early for a platform the lock lacks
    image = lock.image
    healthcheck = None
    if image.port is not None:
        healthcheck = _healthcheck(image.port, image.healthcheck or "/healthz")
    label_map = image_labels(bundle, options)
    if healthcheck:
        # OCI image configs have no healthcheck: buildah/podman drop HEALTHCHECK, the label keeps
        # it for whoever runs the image (e.g. `docker run --health-cmd`).
        label_map["dev.envbuild.healthcheck"] = json.dumps(healthcheck)
    labels = [f"{key}={docker_string(value)}" for key, value in sorted(label_map.items())]
    return render(
        "Dockerfile.j2",
        bundle_id=lock.bundle_id,
        platform=options.platform,
        base=image.base,
        venv=VENV,
        workdir=WORKDIR,
        model=[f"{key}={docker_string(value)}" for key, value in model_env(lock.model).items()],
        model_dir=MODEL_DIR,
        code=bool(image.code),
        user=USER,
        uid=UID,
        port=image.port,
        healthcheck=healthcheck,
        labels=labels,
        cmd=list(image.cmd),
    )


def render_dockerignore() -> bytes:
    """The context holds only what the Dockerfile copies; everything else stays out."""
    lines = [
        "# .dockerignore: generated by `envbuild generate`; do not edit.",
        "# The build context is this directory; only what the Dockerfile copies goes in.",
        "*",
        "!wheels/",
        "!code/",
        "!model/",
        f"!{SBOM_FILE}",
        "**/__pycache__",
        "**/*.pyc",
    ]
    return ("\n".join(lines) + "\n").encode()


def render_wheel_requirements(bundle: Bundle, platform: str) -> bytes:
    """wheels/requirements.txt: one `name==version --hash` line per wheel of the platform."""
    lines = [f"# pip install --no-index --require-hashes --no-deps: {platform}"]
    for pkg, wheel in image_wheels(bundle, platform):
        lines.append(f"{pkg.name}=={pkg.version} --hash=sha256:{wheel.sha256}")
    return ("\n".join(lines) + "\n").encode()


def cmd_json(cmd: tuple[str, ...]) -> str:
    return json.dumps(list(cmd), ensure_ascii=False)
