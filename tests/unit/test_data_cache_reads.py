"""How often `data add` reads a file: once, whether the cache clones or copies it."""

from __future__ import annotations

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


def test_auto_still_refuses_a_file_changed_against_its_expected_digest(tmp_path: Path) -> None:
    """The one-read path keeps the checks of the copy: the object is named by what was read."""
    path = tmp_path / "a.bin"
    path.write_bytes(b"one")
    cache = ObjectCache(tmp_path / "cache")
    cache_mod._no_reflink.add(str(cache.root))
    try:
        fh = cache.store_reflink(str(path))
        path.write_bytes(b"two")
        fh2 = cache.store_reflink(str(path))
    finally:
        cache_mod._no_reflink.discard(str(cache.root))
    assert fh.hexdigest != fh2.hexdigest
    assert cache.path("sha256", fh.hexdigest).read_bytes() == b"one"
    assert cache.path("sha256", fh2.hexdigest).read_bytes() == b"two"
