"""`envbuild data add` and `checkout --link` on a file system with reflinks, and where none
can be made.

The reflink side is a loop-mounted XFS (the `reflink_dir` fixture, tests/integration/conftest.py)
holding both the project and the cache, so FICLONE can clone a cache object into the working
tree. That a restored file is a clone is read back from the file system (FIEMAP: every extent
flagged shared, on the very blocks of the cache object), not taken from the CLI's word.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from envbuild.data import LINKS
from tests.integration.test_data_s3 import envbuild
from tests.lockfiles import write_placeholder_lock

pytestmark = pytest.mark.integration

FS_IOC_FIEMAP = 0xC020660B  # _IOWR('f', 11, struct fiemap)
FIEMAP_FLAG_SYNC = 0x1  # write dirty pages first: delayed allocation has no blocks to report
FIEMAP_EXTENT_LAST = 0x1
FIEMAP_EXTENT_SHARED = 0x2000
# struct fiemap: fm_start, fm_length, fm_flags, fm_mapped_extents, fm_extent_count, fm_reserved
_FIEMAP = struct.Struct("=QQIIII")
# struct fiemap_extent: fe_logical, fe_physical, fe_length, 2 x u64 reserved, fe_flags, 3 x u32
_EXTENT = struct.Struct("=QQQ16xI12x")
_BATCH = 64
BLOCK = 4096  # mkfs.xfs's default block size (and ext4's)

Extent = tuple[int, int, int, int]  # logical, physical, length (bytes), flags


def extents(path: Path) -> list[Extent]:
    """Every extent of `path`, from the FIEMAP ioctl (after writing its dirty pages)."""
    found: list[Extent] = []
    start = 0
    with open(path, "rb") as f:
        while True:
            buf = bytearray(_FIEMAP.pack(start, (1 << 64) - 1, FIEMAP_FLAG_SYNC, 0, _BATCH, 0))
            buf += bytes(_EXTENT.size * _BATCH)
            fcntl.ioctl(f.fileno(), FS_IOC_FIEMAP, buf)
            mapped = _FIEMAP.unpack_from(buf)[3]
            batch = [_EXTENT.unpack_from(buf, _FIEMAP.size + i * _EXTENT.size)
                     for i in range(mapped)]
            found += batch
            if not batch or batch[-1][3] & FIEMAP_EXTENT_LAST:
                return found
            start = batch[-1][0] + batch[-1][2]


def shares_extents(path: Path) -> bool:
    """Every block of `path` is shared with another file: it is a reflink clone (or a source)."""
    found = extents(path)
    return bool(found) and all(flags & FIEMAP_EXTENT_SHARED for *_, flags in found)


def shares_none(path: Path) -> bool:
    """No block of `path` is shared: a copy of its own."""
    return not any(flags & FIEMAP_EXTENT_SHARED for *_, flags in extents(path))


def physical_blocks(path: Path) -> list[int]:
    """The disk block under each block of `path`, in file order (the files here have no holes)."""
    blocks: list[int] = []
    for logical, physical, length, _ in extents(path):
        assert logical == len(blocks) * BLOCK, f"{path}: a hole at {len(blocks) * BLOCK}"
        blocks += range(physical // BLOCK, (physical + length + BLOCK - 1) // BLOCK)
    return blocks


def fs_type(path: Path) -> str:
    """The type of the file system `path` is on (the deepest mount point above it)."""
    target, best, kind = str(path.resolve()), "", ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            under = target == point or target.startswith(point.rstrip("/") + "/")
            if under and len(point) >= len(best):
                best, kind = point, fields[fields.index("-") + 1]
    return kind


def make_project(root: Path) -> Path:
    p = root / "proj"
    data = p / "data"
    (data / "sub").mkdir(parents=True)
    write_placeholder_lock(p)
    (data / "big.bin").write_bytes(os.urandom(1 << 20))  # 256 blocks: an edit touches one
    (data / "odd.bin").write_bytes(os.urandom(16 * BLOCK + 1))  # ends inside a block
    (data / "sub" / "labels.csv").write_text("id,label\n" + "".join(f"{i},{i % 3}\n"
                                                                    for i in range(200)))
    (data / "run.sh").write_text("#!/bin/sh\necho restored\n")
    (data / "run.sh").chmod(0o755)
    (data / "empty").write_bytes(b"")
    return p


def working_files(project: Path) -> dict[str, tuple[bytes, bool]]:
    """Project path -> (bytes, executable) of every file under data/."""
    return {str(f.relative_to(project)): (f.read_bytes(), bool(f.stat().st_mode & 0o100))
            for f in sorted((project / "data").rglob("*")) if f.is_file()}


def cache_object(cache: Path, data: bytes) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    return cache / "sha256" / digest[:2] / digest[2:]


def add_wipe_checkout(project: Path, cache: Path, link: str) -> dict[str, tuple[bytes, bool]]:
    """`data add data`, delete data/, `data checkout --link LINK`; the files are back as they were."""
    envbuild(project, cache, "add", "data")
    before = working_files(project)
    shutil.rmtree(project / "data")
    out = json.loads(envbuild(project, cache, "checkout", "--link", link, "--json").stdout)
    assert sorted(out["written"]) == sorted(before)
    assert working_files(project) == before  # bytes and executable bits
    return before


def verified(project: Path, cache: Path) -> None:
    verify = json.loads(envbuild(project, cache, "verify", "--json").stdout)
    assert verify["ok"] is True and verify["hashed"] == 5, verify


@pytest.mark.parametrize("link", LINKS)
def test_checkout_on_xfs_clones_the_cache_objects(link: str, reflink_tmp_path: Path) -> None:
    assert fs_type(reflink_tmp_path) == "xfs"
    project, cache = make_project(reflink_tmp_path), reflink_tmp_path / "cache"
    before = add_wipe_checkout(project, cache, link)
    for rel, (data, executable) in before.items():
        path, obj = project / rel, cache_object(cache, data)
        # hardlink shares the read-only object, so never for an executable file (a copy then).
        how = {"auto": "reflink", "reflink": "reflink", "copy": "copy",
               "hardlink": "copy" if executable else "hardlink"}[link]
        assert os.path.samefile(path, obj) == (how == "hardlink"), rel
        if not data:
            continue  # no blocks to share
        if how == "reflink":
            assert shares_extents(path) and shares_extents(obj), (rel, extents(path))
            assert physical_blocks(path) == physical_blocks(obj), rel
        elif how == "copy":
            assert shares_none(path) and shares_none(obj), (rel, extents(path))
            assert not set(physical_blocks(path)) & set(physical_blocks(obj)), rel
    verified(project, cache)


def test_editing_a_cloned_file_leaves_the_cache_object_intact(reflink_tmp_path: Path) -> None:
    project, cache = make_project(reflink_tmp_path), reflink_tmp_path / "cache"
    before = add_wipe_checkout(project, cache, "auto")
    data = before["data/big.bin"][0]
    big, obj = project / "data" / "big.bin", cache_object(cache, data)
    blocks = physical_blocks(obj)
    assert physical_blocks(big) == blocks

    with open(big, "r+b") as f:  # one block rewritten in place: copy-on-write
        f.seek(10 * BLOCK)
        f.write(b"\xff" * BLOCK)
    assert obj.read_bytes() == data
    assert hashlib.sha256(obj.read_bytes()).hexdigest() == obj.parent.name + obj.name
    assert physical_blocks(obj) == blocks  # the object did not move either
    moved = [i for i, (a, b) in enumerate(zip(physical_blocks(big), blocks)) if a != b]
    assert moved == [10]  # only the written block got a block of its own; the rest is shared
    assert not shares_extents(big) and not shares_none(big)

    failed = envbuild(project, cache, "verify", "--json", check=False)
    assert failed.returncode == 7, failed.stderr
    assert "data/big.bin" in failed.stderr
    # --force stores the edited bytes in the cache first, then clones the locked object again.
    out = json.loads(envbuild(project, cache, "checkout", "--force", "--json").stdout)
    assert out["written"] == ["data/big.bin"] and out["kept_in_cache"] == ["data/big.bin"]
    assert cache_object(cache, data[:10 * BLOCK] + b"\xff" * BLOCK + data[11 * BLOCK:]).is_file()
    assert big.read_bytes() == data and physical_blocks(big) == blocks
    verified(project, cache)


def _no_reflink_root(where: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    if where == "ext4":
        if fs_type(tmp_path) != "ext4":
            pytest.skip(f"the temp dir is on {fs_type(tmp_path)}, not ext4")
        return tmp_path
    return request.getfixturevalue("reflink_tmp_path")  # the project on XFS, the cache on ext4


WHERE = ["ext4", "cache on another file system"]


@pytest.mark.parametrize("where", WHERE)
def test_where_no_reflink_can_be_made_auto_copies(
        where: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A failed FICLONE (EOPNOTSUPP on ext4, EXDEV across file systems): auto copies, both ways."""
    project, cache = make_project(_no_reflink_root(where, tmp_path, request)), tmp_path / "cache"
    envbuild(project, cache, "add", "data")  # --link auto is the default
    for rel, (data, _) in working_files(project).items():
        if data:
            assert shares_none(cache_object(cache, data)), rel
    before = working_files(project)
    shutil.rmtree(project / "data")
    out = json.loads(envbuild(project, cache, "checkout", "--json").stdout)
    assert out["written_by"] == {"copy": 5}
    assert working_files(project) == before
    for rel, (data, _) in before.items():
        if data:
            assert shares_none(project / rel), (rel, extents(project / rel))
    verified(project, cache)


@pytest.mark.parametrize("where", WHERE)
def test_where_no_reflink_can_be_made_link_reflink_refuses(
        where: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """An explicit --link reflink is an error there, before anything is written."""
    project, cache = make_project(_no_reflink_root(where, tmp_path, request)), tmp_path / "cache"
    lock = (project / "envbuild.lock").read_bytes()
    refused = envbuild(project, cache, "add", "--link", "reflink", "data", check=False)
    assert refused.returncode != 0 and "no reflinks" in refused.stderr, refused.stderr
    assert refused.stderr.count("error:") == 1 and "hint:" in refused.stderr
    assert (project / "envbuild.lock").read_bytes() == lock  # nothing pinned

    before = add_wipe_checkout(project, cache, "copy")
    shutil.rmtree(project / "data")
    refused = envbuild(project, cache, "checkout", "--link", "reflink", check=False)
    assert refused.returncode != 0 and "no reflinks" in refused.stderr, refused.stderr
    assert not (project / "data").exists()  # nothing restored, no probe left behind
    assert not [p for p in project.iterdir() if "envbuild" in p.name and p.name != "envbuild.lock"
                and p.name != ".envbuild"]
    envbuild(project, cache, "checkout")
    assert working_files(project) == before


@pytest.mark.parametrize("link", ["auto", "reflink"])
def test_add_on_xfs_clones_the_files_into_the_cache(link: str, reflink_tmp_path: Path) -> None:
    """add --link auto (the default) or reflink: each cache object is a clone of its working
    file (the same blocks), and the working file stays writable: an edit leaves the object."""
    project, cache = make_project(reflink_tmp_path), reflink_tmp_path / "cache"
    envbuild(project, cache, "add", "--link", link, "data")
    files = working_files(project)
    for rel, (data, _) in files.items():
        path, obj = project / rel, cache_object(cache, data)
        assert obj.read_bytes() == data and not os.path.samefile(path, obj), rel
        assert obj.stat().st_mode & 0o222 == 0, rel  # the object is read-only
        assert path.stat().st_mode & 0o200, rel  # the working file is not
        if data:
            assert physical_blocks(path) == physical_blocks(obj), rel
            assert shares_extents(obj), rel
    verified(project, cache)
    big = project / "data" / "big.bin"
    with open(big, "r+b") as f:  # in place: copy-on-write gives this block its own storage
        f.seek(3 * BLOCK)
        f.write(b"\0" * BLOCK)
    obj = cache_object(cache, files["data/big.bin"][0])
    assert hashlib.sha256(obj.read_bytes()).hexdigest() == obj.parent.name + obj.name
