"""How `data add` stores a file: read once, named only when complete, never over good bytes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from envbuild.data import cache as cache_mod
from envbuild.data.cache import ObjectCache
from envbuild.data.hashing import hash_file


def test_auto_reads_each_file_once_where_the_cache_cannot_clone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = []
    for i in range(20):
        path = tmp_path / "data" / f"f{i}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(bytes([i]) * (1000 + i))
        files.append(path)
    reads: list[str] = []

    def counting_hash_file(path: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        reads.append(path)
        return hash_file(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cache_mod, "hash_file", counting_hash_file)
    cache = ObjectCache(tmp_path / "cache")
    # Where the file system cannot clone (this process found out on an earlier file): one read
    # that hashes and copies, not a hash and then a second read for the copy.
    monkeypatch.setattr(cache_mod, "_no_reflink", {str(cache.root)})
    for path in files:
        fh = cache.store_reflink(str(path))
        stored = cache.path("sha256", fh.hexdigest)
        assert stored.read_bytes() == path.read_bytes()
    assert sorted(reads) == sorted(str(p) for p in files)


def test_auto_one_read_path_names_each_object_by_what_it_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-read path keeps the copy's naming: a file edited between two adds gives two
    objects, each holding the bytes its name says."""
    path = tmp_path / "a.bin"
    path.write_bytes(b"one")
    cache = ObjectCache(tmp_path / "cache")
    monkeypatch.setattr(cache_mod, "_no_reflink", {str(cache.root)})
    fh = cache.store_reflink(str(path))
    path.write_bytes(b"two")
    fh2 = cache.store_reflink(str(path))
    assert fh.hexdigest != fh2.hexdigest
    assert cache.path("sha256", fh.hexdigest).read_bytes() == b"one"
    assert cache.path("sha256", fh2.hexdigest).read_bytes() == b"two"


def _flink_expected() -> bool:
    """Linux lets a process name its own O_TMPFILE from 6.10 on (before that, root only)."""
    if sys.platform != "linux":
        return False
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    return (major, minor) >= (6, 10) or os.geteuid() == 0


def test_objects_are_written_nameless_and_linked_in_complete(tmp_path: Path) -> None:
    cache = ObjectCache(tmp_path / "cache")
    assert cache_mod._can_flink(str(cache.root)) == _flink_expected()
    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 5000)
    fh = cache.store_file(str(src))
    stored = cache.path("sha256", fh.hexdigest)
    assert stored.read_bytes() == b"x" * 5000
    assert stored.stat().st_mode & 0o777 == 0o444
    assert [p.name for p in (cache.root / "tmp").rglob("*") if p.is_file()] == []


def test_a_truncated_object_is_replaced_and_a_good_one_kept(tmp_path: Path) -> None:
    """What a crash leaves (a short object) is written again; a complete one is not touched."""
    cache = ObjectCache(tmp_path / "cache")
    src = tmp_path / "a.bin"
    src.write_bytes(b"y" * 7000)
    fh = cache.store_file(str(src))
    stored = cache.path("sha256", fh.hexdigest)
    inode = stored.stat().st_ino
    cache.store_file(str(src))
    assert stored.stat().st_ino == inode
    stored.chmod(0o644)
    stored.write_bytes(b"y" * 10)
    cache.store_file(str(src))
    assert stored.read_bytes() == b"y" * 7000
    assert stored.stat().st_mode & 0o777 == 0o444
    assert [p.name for p in (cache.root / "tmp").rglob("*") if p.is_file()] == []
