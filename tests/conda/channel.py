"""A small local conda channel for tests: real packages, real repodata, no network.

The machines reach no conda channel, so the tests build their own. Packages are real conda
archives written by conda-package-handling (`.conda` and `.tar.bz2`); `repodata.json` is written
by rattler's indexer (`rattler.index.index_fs`, the same code as `rattler-index`) because
conda-index needs conda itself, which PyPI does not carry. Every file's mtime is fixed, so a
package's bytes depend on its content only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PLATFORMS = ("linux-64", "linux-aarch64")
FIXED_MTIME = 946684800  # 2000-01-01: any constant works, the point is that it never moves


@dataclass(frozen=True, kw_only=True, slots=True)
class Pkg:
    name: str
    version: str
    subdir: str  # "noarch", "linux-64", "linux-aarch64"
    build_number: int = 0
    depends: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # relative path -> text
    fmt: str = ".conda"  # or ".tar.bz2"

    @property
    def build(self) -> str:
        return f"h{hashlib.sha256(self.subdir.encode()).hexdigest()[:8]}_{self.build_number}"

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}{self.fmt}"


def _index_json(pkg: Pkg) -> dict[str, object]:
    data: dict[str, object] = {
        "name": pkg.name, "version": pkg.version, "build": pkg.build,
        "build_number": pkg.build_number, "depends": list(pkg.depends), "license": "MIT",
        "subdir": pkg.subdir, "timestamp": FIXED_MTIME * 1000,
    }
    if pkg.subdir == "noarch":
        data["noarch"] = "generic"
    else:
        data["platform"], _, arch = pkg.subdir.partition("-")
        data["arch"] = {"64": "x86_64"}.get(arch, arch)
    return data


def build_package(pkg: Pkg, channel: Path) -> Path:
    """Write one real conda package into channel/<subdir>/ and return its path."""
    from conda_package_handling import api

    out_dir = channel / pkg.subdir
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = []
        for rel, text in sorted(pkg.files.items()):
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            data = text.encode()
            target.write_bytes(data)
            paths.append({"_path": rel, "path_type": "hardlink",
                          "sha256": hashlib.sha256(data).hexdigest(), "size_in_bytes": len(data)})
        info = root / "info"
        info.mkdir()
        (info / "index.json").write_text(json.dumps(_index_json(pkg), indent=2, sort_keys=True))
        (info / "paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1},
                                                    indent=2, sort_keys=True))
        (info / "files").write_text("".join(f"{p['_path']}\n" for p in paths))
        members = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        for p in root.rglob("*"):
            os.utime(p, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
        api.create(str(root), members, str(out_dir / pkg.filename))
    return out_dir / pkg.filename


def index_channel(channel: Path) -> None:
    """repodata.json for every subdir (noarch and both platforms, even when empty)."""
    import asyncio

    from rattler import Subdir
    from rattler.index import index_fs

    for subdir in ("noarch", *PLATFORMS):
        (channel / subdir).mkdir(parents=True, exist_ok=True)

    async def index_all() -> None:
        for subdir in ("noarch", *PLATFORMS):
            await index_fs(channel, target_platform=Subdir(subdir), write_zst=False, write_shards=False,
                           force=True)

    asyncio.run(index_all())


def build_channel(channel: Path, packages: list[Pkg]) -> Path:
    if channel.exists():
        shutil.rmtree(channel)
    channel.mkdir(parents=True)
    for pkg in packages:
        build_package(pkg, channel)
    index_channel(channel)
    return channel
