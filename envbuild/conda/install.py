"""Installing a locked conda environment into a prefix: every package checked by sha256 first.

No solve happens here: the packages are exactly conda-lock.yml's for one platform. Each archive
is fetched (file:// or http(s)://) into a cache keyed by its sha256 and checked against the lock
before anything is linked; py-rattler then links the checked local files into the prefix (and
checks the sha256 again on extraction). Link scripts never run. `image_prefix` is where the
prefix will live inside an image, so prefix placeholders name that path, not the host's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from envbuild.conda.lockfile import CondaLock, CondaPackage
from envbuild.errors import IntegrityError, LockError, NetworkError

Status = Callable[[str], None]
IMAGE_PREFIX = "/opt/conda"
# Files rattler writes that name the host or the clock: dropped so the prefix is reproducible.
_HOST_FILES = ("conda-meta/history", "CACHEDIR.TAG")


def _read_url(url: str) -> bytes:
    if url.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        try:
            return Path(unquote(urlsplit(url).path)).read_bytes()
        except OSError as exc:
            raise NetworkError(f"cannot read {url}: {exc.strerror}",
                               hint="is the channel still there?") from None
    import httpx

    try:
        with httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0), follow_redirects=True) as c:
            resp = c.get(url)
    except httpx.HTTPError as exc:
        raise NetworkError(f"cannot fetch {url}: {exc}", hint="is the channel reachable?") from None
    if resp.status_code != 200:
        raise NetworkError(f"cannot fetch {url}: HTTP {resp.status_code}",
                           hint="the channel no longer serves this package")
    return resp.content


def fetch_checked(pkg: CondaPackage, cache: Path) -> Path:
    """The package archive in the cache, its sha256 equal to the lock's; else IntegrityError."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{pkg.sha256}-{pkg.filename}"
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == pkg.sha256:
        return target
    data = _read_url(pkg.url)
    actual = hashlib.sha256(data).hexdigest()
    if actual != pkg.sha256:
        raise IntegrityError(
            f"conda package {pkg.name} {pkg.version} ({pkg.platform}): sha256 mismatch for "
            f"{pkg.url}: the lock has {pkg.sha256}, the channel served {actual}",
            hint="the channel's file changed after locking; nothing was installed. If the "
            "change is expected, re-lock with `envbuild lock --upgrade`",
        )
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)  # two concurrent runs write the same checked bytes
    return target


def _record(pkg: CondaPackage, archive: Path, channel: str):  # type: ignore[no-untyped-def]
    import rattler

    index = rattler.IndexJson.from_package_archive(archive)
    record = rattler.PackageRecord(
        name=pkg.name, version=pkg.version, build=rattler.BuildString(pkg.build),
        build_number=index.build_number,
        subdir=index.subdir or pkg.platform, arch=index.arch, platform=index.platform,
        noarch=index.noarch, depends=list(index.depends), constrains=list(index.constrains),
        sha256=bytes.fromhex(pkg.sha256), md5=bytes.fromhex(pkg.md5) if pkg.md5 else None,
        size=archive.stat().st_size,
    )
    return rattler.RepoDataRecord(package_record=record, file_name=pkg.filename,
                                  url=archive.resolve().as_uri(), channel=channel)


def install_prefix(lock: CondaLock, platform: str, prefix: Path, *, cache: Path,
                   image_prefix: str = IMAGE_PREFIX, status: Status = lambda _: None) -> int:
    """Install conda-lock.yml's packages for `platform` into `prefix`; return the count."""
    import asyncio

    import rattler

    if platform not in lock.platforms:
        raise LockError(f"conda-lock.yml has no packages for {platform} "
                        f"(it locks {', '.join(lock.platforms)})",
                        hint="add the platform to [conda] platforms and re-run `envbuild lock`")
    packages = lock.for_platform(platform)
    status(f"checking {len(packages)} conda packages for {platform} by sha256")
    archives = {p.name: fetch_checked(p, cache / "archives") for p in packages}
    channel = lock.channels[0] if lock.channels else "local"
    records = [_record(p, archives[p.name], channel) for p in packages]
    if prefix.exists():
        shutil.rmtree(prefix)
    status(f"linking {len(records)} conda packages into {prefix}")
    asyncio.run(rattler.install(
        records, target_prefix=prefix, cache_dir=cache / "extracted",
        platform=rattler.Subdir(platform), execute_link_scripts=False, show_progress=False,
        alternative_target_prefix=image_prefix, installed_packages=[]))
    for name in _HOST_FILES:
        (prefix / name).unlink(missing_ok=True)
    _scrub_conda_meta(prefix, packages)
    return len(records)


def _scrub_conda_meta(prefix: Path, packages: tuple[CondaPackage, ...]) -> None:
    """conda-meta/*.json name host paths (the cache): record the lock's URL instead and drop
    the cache paths, so the prefix's bytes depend on the lock alone."""
    import json

    for pkg in packages:
        path = prefix / "conda-meta" / f"{pkg.filename.removesuffix('.conda').removesuffix('.tar.bz2')}.json"
        meta = json.loads(path.read_text(encoding="utf-8"))
        meta["url"] = pkg.url
        meta.pop("extracted_package_dir", None)
        meta.pop("link", None)
        path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        path.chmod(0o644)
