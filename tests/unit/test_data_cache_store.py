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


def test_store_batch_matches_store_file_and_takes_the_long_way_only_when_needed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch path (what the workers run) gives what store_file gives, file by file; only a
    file one read cannot take whole goes through store_file."""
    data = tmp_path / "data"
    data.mkdir()
    sizes = {"empty": 0, "small": 5000, "page": 4096, "big": (1 << 20) + 3}
    for name, size in sizes.items():
        (data / name).write_bytes(bytes(range(256)) * (size // 256) + b"z" * (size % 256))
    jobs = [(str(data / name), f"data/{name}", size) for name, size in sizes.items()]
    long_way: list[str] = []
    real_store_file = ObjectCache.store_file

    def noting(self: ObjectCache, src: str, *args: object, **kwargs: object) -> object:
        long_way.append(src)
        return real_store_file(self, src, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ObjectCache, "store_file", noting)
    cache = ObjectCache(tmp_path / "cache")
    outcomes = cache.store_batch(jobs, "sha256", "copy")
    expected = ObjectCache(tmp_path / "other")
    for (path, _, _), outcome in zip(jobs, outcomes, strict=True):
        fh = real_store_file(expected, path)
        assert outcome == (fh.hexdigest, *fh.stat)
        stored = cache.path("sha256", fh.hexdigest)
        assert stored.read_bytes() == Path(path).read_bytes()
        assert stored.stat().st_mode & 0o777 == 0o444
    if cache_mod._can_flink(str(cache.root)):
        assert long_way == [str(data / "big")]
    assert [p for p in (cache.root / "tmp").rglob("*") if p.is_file()] == []


def test_store_batch_stops_at_a_bad_file_with_its_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a").write_bytes(b"a" * 100)
    os.mkfifo(data / "fifo")
    (data / "z").write_bytes(b"z" * 100)
    jobs = [(str(data / n), f"data/{n}", 100) for n in ("a", "fifo", "z")]
    outcomes = ObjectCache(tmp_path / "cache").store_batch(jobs, "sha256", "copy")
    assert len(outcomes) == 2 and outcomes[0][0]
    assert outcomes[1][0] == "" and "not a regular file" in str(outcomes[1][1])
