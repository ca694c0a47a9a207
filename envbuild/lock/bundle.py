"""envbuild.lock: the one lock that pins every input of a bundle. Pure.

Canonical form (format version 2): TOML with every table's keys sorted, arrays in the order
the model keeps them (sorted where they are sets), `\\n` line endings, one trailing newline.

Hashes:
- `inputs.digest` = sha256 over the lines "<path>\\0<sha256 of its bytes>\\n" of every input
  file (the spec and each requirement file), sorted by path. It answers "is the lock stale?".
- `inputs.resolver` records which backend found the pins (uv, pip-tools).
- `bundle.id` = sha256 of the lock's content with `bundle.id` and the `inputs` table left
  out, serialised as canonical JSON: keys sorted at every level, separators "," and ":", UTF-8
  (`json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)`). JSON, not the
  TOML rendering, so that no TOML library's formatting can move an id, and so reading a lock
  (which checks the id) needs no TOML writer. It names what is pinned, not how it was written
  down: editing a comment in requirements.in makes the lock stale (inputs change) but, once
  re-locked to the same pins, keeps the bundle id, and so the image tag and bento version.
Changing either definition bumps FORMAT_VERSION (2: the bundle id moved from TOML to JSON).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envbuild.errors import LockError

FORMAT_VERSION = 2
LOCK_FILE = "envbuild.lock"
PYLOCK_FILE = "pylock.toml"
REQUIREMENTS_FILE = "requirements.txt"
REQUIREMENTS_LOCK_FILE = "requirements.lock.txt"  # when requirements.txt is itself an input


def inputs_digest(files: Mapping[str, str]) -> str:
    listing = "".join(f"{path}\0{digest}\n" for path, digest in sorted(files.items()))
    return "sha256:" + hashlib.sha256(listing.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class PythonPin:
    version: str
    platforms: tuple[str, ...]
    glibc: str
    index_url: str | None
    lock_file: str
    lock_digest: str
    requirements_file: str
    requirements_digest: str
    packages: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PythonPin:
        return cls(
            version=d["version"],
            platforms=tuple(d["platforms"]),
            glibc=d["glibc"],
            index_url=d.get("index_url"),
            lock_file=d["lock_file"],
            lock_digest=d["lock_digest"],
            requirements_file=d["requirements_file"],
            requirements_digest=d["requirements_digest"],
            packages=d["packages"],
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "platforms": list(self.platforms),
            "glibc": self.glibc,
            "lock_file": self.lock_file,
            "lock_digest": self.lock_digest,
            "requirements_file": self.requirements_file,
            "requirements_digest": self.requirements_digest,
            "packages": self.packages,
        }
        if self.index_url is not None:
            out["index_url"] = self.index_url
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class ImagePin:
    name: str
    base_ref: str | None = None  # as the spec wrote it, e.g. "127.0.0.1:5000/python:3.11"
    base: str | None = None  # pinned, "127.0.0.1:5000/python@sha256:..."
    # How the image runs, copied from the spec's [image] so `envbuild generate` needs the lock
    # alone. Written only when set: locks without them keep their bytes and bundle id.
    cmd: tuple[str, ...] = ()
    port: int | None = None
    healthcheck: str | None = None
    code: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImagePin:
        return cls(name=d["name"], base_ref=d.get("base_ref"), base=d.get("base"),
                   cmd=tuple(d.get("cmd", ())), port=d.get("port"),
                   healthcheck=d.get("healthcheck"), code=tuple(d.get("code", ())))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.base_ref is not None:
            out["base_ref"] = self.base_ref
        if self.base is not None:
            out["base"] = self.base
        if self.cmd:
            out["cmd"] = list(self.cmd)
        if self.port is not None:
            out["port"] = self.port
        if self.healthcheck is not None:
            out["healthcheck"] = self.healthcheck
        if self.code:
            out["code"] = sorted(self.code)
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvbuildLock:
    name: str
    python: PythonPin
    image: ImagePin
    inputs: Mapping[str, str]  # input file -> "sha256:..."
    resolver: str  # how the pins were found; kept with the inputs, out of the bundle id
    # Room for the model and data issues: empty until they pin something.
    model: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    # [conda]: environment file, conda-lock.yml and its sha256 (envbuild.conda.pin.CondaPin).
    # Absent for pip-only projects, whose locks keep their bytes and bundle id.
    conda: Mapping[str, Any] = field(default_factory=dict)
    # [nix]: the nixpkgs revision the spec chose for generated flakes (absent: envbuild's own).
    nix: Mapping[str, Any] = field(default_factory=dict)
    version: int = FORMAT_VERSION

    @property
    def inputs_digest(self) -> str:
        return inputs_digest(self.inputs)

    @property
    def bundle_id(self) -> str:
        pinned = self.to_dict()
        del pinned["inputs"]
        del pinned["bundle"]["id"]
        text = json.dumps(pinned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    @property
    def short_id(self) -> str:
        return self.bundle_id.removeprefix("sha256:")[:12]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnvbuildLock:
        return cls(
            version=d["version"],
            name=d["bundle"]["name"],
            python=PythonPin.from_dict(d["python"]),
            image=ImagePin.from_dict(d["image"]),
            inputs=dict(d["inputs"]["files"]),
            resolver=d["inputs"]["resolver"],
            model=dict(d.get("model", {})),
            data=dict(d.get("data", {})),
            conda=dict(d.get("conda", {})),
            nix=dict(d.get("nix", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "bundle": {"name": self.name, "id": ""},
            "inputs": {
                "digest": self.inputs_digest,
                "files": dict(self.inputs),
                "resolver": self.resolver,
            },
            "python": self.python.to_dict(),
            "image": self.image.to_dict(),
        }
        if self.model:
            out["model"] = dict(self.model)
        if self.data:
            out["data"] = dict(self.data)
        if self.conda:
            out["conda"] = dict(self.conda)
        if self.nix:
            out["nix"] = dict(self.nix)
        return out



def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted(v) for v in value]
    return value


def canonical_toml(data: Mapping[str, Any]) -> bytes:
    """Keys sorted at every level; scalars before tables (TOML requires it), `\\n` endings."""
    import tomlkit  # only when writing: a no-change `envbuild lock` never renders

    text = tomlkit.dumps(_sorted(data))
    return (text.rstrip("\n") + "\n").encode()


def render_lock(lock: EnvbuildLock) -> bytes:
    data = lock.to_dict()
    data["bundle"]["id"] = lock.bundle_id
    header = "# envbuild.lock: generated by `envbuild lock`; do not edit.\n"
    return header.encode() + canonical_toml(data)


def parse_lock(text: str, *, file: str = LOCK_FILE) -> EnvbuildLock:
    try:
        data = tomllib.loads(text)
        version = data.get("version")
        if version != FORMAT_VERSION:
            raise LockError(
                f"{file} has format version {version!r}; this envbuild reads {FORMAT_VERSION}",
                hint="re-run `envbuild lock` with this version of envbuild",
            )
        lock = EnvbuildLock.from_dict(data)
        recorded = data["bundle"]["id"]
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise LockError(f"{file} is damaged: {exc!r}", hint="re-run `envbuild lock`") from None
    if recorded != lock.bundle_id:
        raise LockError(
            f"{file} was edited by hand: its bundle id does not match its content",
            hint="re-run `envbuild lock` instead of editing the lock",
        )
    return lock
