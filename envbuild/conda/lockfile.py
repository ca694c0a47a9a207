"""conda-lock.yml: conda-lock's own format (v1 on disk), written and read by conda-lock's models.

Pure apart from conda-lock's writer, which wants a path: it writes into a private temporary
directory and the bytes come back (the caller writes them atomically). The bytes depend on the
packages and the metadata below only: conda-lock sorts packages by (manager, name, platform)
and each package's dependencies by name; envbuild writes no time or git metadata.

`content_hash` (per platform, conda-lock's staleness key) is envbuild's:
sha256 of the JSON {"channels": [...], "platform": P, "specs": [...]} with sorted keys and no
spaces, specs in the file's order. Changing it bumps envbuild.lock's format version.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.conda import CONDA_LOCK_FILE
from envbuild.errors import LockError


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaPackage:
    name: str
    version: str
    build: str
    platform: str  # the target platform this entry is for (noarch packages repeat per target)
    url: str
    sha256: str  # hex, no prefix
    md5: str
    depends: tuple[str, ...] = ()  # match specs, "name spec" or "name"

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CondaPackage:
        return cls(name=d["name"], version=d["version"], build=d["build"],
                   platform=d["platform"], url=d["url"], sha256=d["sha256"], md5=d["md5"],
                   depends=tuple(d.get("depends", ())))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "build": self.build,
                "platform": self.platform, "url": self.url, "sha256": self.sha256,
                "md5": self.md5, "depends": list(self.depends)}


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaLock:
    channels: tuple[str, ...]
    platforms: tuple[str, ...]
    specs: tuple[str, ...]
    sources: tuple[str, ...]  # the environment file, relative to the lock
    packages: tuple[CondaPackage, ...]

    def for_platform(self, platform: str) -> tuple[CondaPackage, ...]:
        return tuple(sorted((p for p in self.packages if p.platform == platform),
                            key=lambda p: p.name))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CondaLock:
        return cls(channels=tuple(d["channels"]), platforms=tuple(d["platforms"]),
                   specs=tuple(d["specs"]), sources=tuple(d["sources"]),
                   packages=tuple(CondaPackage.from_dict(p) for p in d["packages"]))

    def to_dict(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "platforms": list(self.platforms),
                "specs": list(self.specs), "sources": list(self.sources),
                "packages": [p.to_dict() for p in self.packages]}


def content_hash(channels: tuple[str, ...], specs: tuple[str, ...], platform: str) -> str:
    doc = {"channels": list(channels), "platform": platform, "specs": list(specs)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _split_dep(dep: str) -> tuple[str, str]:
    name, _, spec = dep.strip().partition(" ")
    return name, spec.strip()


def render_conda_lock(lock: CondaLock) -> bytes:
    """The conda-lock.yml bytes, through conda-lock's models and its own writer."""
    from conda_lock.lockfile import write_conda_lock_file  # type: ignore[import-untyped]
    from conda_lock.lockfile.v2prelim.models import (  # type: ignore[import-untyped]
        HashModel,
        LockedDependency,
        Lockfile,
        LockMeta,
    )

    packages = [
        LockedDependency(
            name=p.name, version=p.version, manager="conda", platform=p.platform,
            dependencies=dict(_split_dep(d) for d in p.depends), url=p.url,
            hash=HashModel(md5=p.md5, sha256=p.sha256), categories={"main"}, build=p.build,
        )
        for p in lock.packages
    ]
    meta = LockMeta(
        content_hash={pl: content_hash(lock.channels, lock.specs, pl) for pl in lock.platforms},
        channels=list(lock.channels), platforms=sorted(lock.platforms),
        sources=list(lock.sources),
    )
    with tempfile.TemporaryDirectory(prefix="envbuild-conda-") as tmp:
        path = Path(tmp) / CONDA_LOCK_FILE
        write_conda_lock_file(Lockfile(package=packages, metadata=meta), path,
                              metadata_choices=(), include_help_text=True)
        text = path.read_text(encoding="utf-8")
    return (text.rstrip("\n") + "\n").encode()


def _channel_url(channel: Any) -> str:
    return str(channel.url)


def parse_conda_lock(data: bytes, *, file: str = CONDA_LOCK_FILE,
                     drop_pip: bool = False) -> CondaLock:
    """Read conda-lock.yml with conda-lock's own parser (v1 and v2 files). envbuild's own
    files hold conda packages only; `drop_pip` skips the pip entries conda-lock writes."""
    from conda_lock.lockfile import parse_conda_lock_file

    with tempfile.TemporaryDirectory(prefix="envbuild-conda-") as tmp:
        path = Path(tmp) / CONDA_LOCK_FILE
        path.write_bytes(data)
        try:
            parsed = parse_conda_lock_file(path)
        except Exception as exc:  # noqa: BLE001 - conda-lock raises yaml, pydantic and its own
            raise LockError(f"{file} is damaged: {exc}", hint="re-run `envbuild lock`") from None
    packages = []
    for dep in parsed.package:
        if dep.manager != "conda" and drop_pip:
            continue
        if dep.manager != "conda":
            raise LockError(f"{file}: {dep.name} is a {dep.manager} package",
                            hint="envbuild keeps pip packages in pylock.toml; re-run `envbuild lock`")
        if not dep.hash.sha256:
            raise LockError(f"{file}: {dep.name} ({dep.platform}) has no sha256",
                            hint="every package must be pinned by sha256; re-run `envbuild lock`")
        packages.append(CondaPackage(
            name=dep.name, version=dep.version, build=dep.build or "", platform=dep.platform,
            url=dep.url, sha256=dep.hash.sha256, md5=dep.hash.md5 or "",
            depends=tuple(f"{n} {s}".strip() for n, s in sorted(dep.dependencies.items())),
        ))
    meta = parsed.metadata
    return CondaLock(
        channels=tuple(_channel_url(c) for c in meta.channels), platforms=tuple(meta.platforms),
        specs=(), sources=tuple(meta.sources),
        packages=tuple(sorted(packages, key=lambda p: (p.platform, p.name))),
    )
