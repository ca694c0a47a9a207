"""The stat cache and the no-change `data status` shortcut (envbuild/data/quick.py).

The shortcut must give exactly the full check's answer whenever it answers, and step aside
(None) whenever something may have changed.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from envbuild.cli.main import main
from envbuild.data import quick, service
from envbuild.data.cache import ObjectCache
from envbuild.data.dvcignore import DvcIgnore
from envbuild.data.errors import DataError
from envbuild.data.service import DataContext
from envbuild.data.statcache import STAT_CACHE, StatCache
from envbuild.data.walk import Entry, unchanged, walk_chunks
from envbuild.errors import IntegrityError
from envbuild.lock.bundle import LOCK_FILE
from tests.lockfiles import write_placeholder_lock

OLD = time.time() - 3600  # older than the stat cache's racy window


def age(*paths: Path) -> None:
    for root in paths:
        for f in [root, *root.rglob("*")]:
            os.utime(f, (OLD, OLD), follow_symlinks=False)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    p = tmp_path / "proj"
    for d in ("data/sub/deeper", "data/other"):
        (p / d).mkdir(parents=True)
    write_placeholder_lock(p)
    for i, name in enumerate(("a.csv", "sub/b.bin", "sub/deeper/c.txt", "other/d.txt")):
        (p / "data" / name).write_bytes(os.urandom(100 + i))
    (p / "model.bin").write_bytes(os.urandom(5000))
    age(p)
    monkeypatch.setenv("ENVBUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(p)
    return p


def walk(project: Path, rel: str) -> tuple[str, list[Entry]]:
    """walk_chunks, collected."""
    kind, chunks = walk_chunks(project, rel)
    return kind, [e for chunk in chunks for e in chunk]


def ctx(project: Path) -> DataContext:
    return DataContext.open(project)


def settled(project: Path) -> None:
    """Add, then age the lock and check once: what a later `data status` finds."""
    service.add(ctx(project), ["data", "model.bin"])
    age(project / LOCK_FILE)
    assert service.check(ctx(project), rehash=False).ok


def status(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["data", "status", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_walk_unchanged_agrees_with_walk(project: Path) -> None:
    kind, entries = walk(project, "data")
    names = [e[0] for e in entries]
    from array import array

    numbers = array("q", [n for e in entries for n in e[1:]])
    assert unchanged(project, "data", kind, names, numbers)
    assert not unchanged(project, "data", "file", names, numbers)
    assert not unchanged(project, "data", kind, names[:-1], numbers[:-4])  # one file more now
    (project / "data" / "sub" / "deeper" / "c.txt").touch()  # mtime only
    assert not unchanged(project, "data", kind, names, numbers)
    kind, entries = walk(project, "data")
    numbers = array("q", [n for e in entries for n in e[1:]])
    names = [e[0] for e in entries]
    assert unchanged(project, "data", kind, names, numbers)
    os.chmod(project / "data" / "a.csv", 0o755)
    assert not unchanged(project, "data", kind, names, numbers)
    (project / "data" / "link").symlink_to("a.csv")  # the full walk decides about links
    assert not unchanged(project, "data", *walk(project, "data")[:1], names, numbers)


def test_no_change_status_answers_from_the_stat_cache_alone(project: Path) -> None:
    assert quick.unchanged(project) is None  # never scanned: the full check must run
    settled(project)
    rows = quick.unchanged(project)
    full = service.check(ctx(project), rehash=False)
    assert rows is not None and rows == [s.to_dict() for s in full.states]
    assert quick.unchanged(project, ["model.bin"]) == [rows[1]]
    assert quick.unchanged(project, ["data/a.csv"]) is None  # a path inside a ref: full check


@pytest.mark.parametrize("change", ["touch", "add", "remove", "chmod", "lock", "replace"])
def test_no_change_status_steps_aside_after_any_change(project: Path, change: str) -> None:
    settled(project)
    target = project / "data" / "sub" / "b.bin"
    if change == "touch":
        os.utime(target, (OLD + 10, OLD + 10))  # mtime only (and outside the racy window)
    elif change == "add":
        (project / "data" / "sub" / "new").write_bytes(b"n")
        age(project / "data" / "sub" / "new")
    elif change == "remove":
        target.unlink()
    elif change == "chmod":
        os.chmod(target, 0o755)
    elif change == "lock":
        (project / LOCK_FILE).write_bytes((project / LOCK_FILE).read_bytes() + b"\n")
    else:  # same bytes in a new inode (a checkout, an editor's save)
        data = target.read_bytes()
        target.unlink()
        target.write_bytes(data)
        os.utime(target, (OLD + 20, OLD + 20))
    assert quick.unchanged(project) is None
    if change in ("touch", "lock", "replace"):
        assert service.check(ctx(project), rehash=False).ok
        age(project / LOCK_FILE)
        service.check(ctx(project), rehash=False)
        assert quick.unchanged(project) is not None  # recorded again


def test_cli_status_is_the_same_through_the_shortcut(project: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    settled(project)
    short = [status(capsys), status(capsys, "--json")]
    monkeypatch.setattr(quick, "unchanged", lambda *a, **k: None)
    full = [status(capsys), status(capsys, "--json")]
    assert short == full
    assert short[0][0] == 0 and "data       ok" in short[0][1]
    assert json.loads(short[1][1])["ok"] is True


def test_a_damaged_stat_cache_is_ignored(project: Path) -> None:
    settled(project)
    path = project / STAT_CACHE
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # one flipped bit far into the marshal data: the checksum catches it
    path.write_bytes(bytes(data))
    assert StatCache.load(project).roots == {}
    assert quick.unchanged(project) is None
    outcome = service.check(ctx(project), rehash=False)
    assert outcome.ok and outcome.hashed == 5
    path.write_bytes(path.read_bytes()[:100])  # torn
    assert StatCache.load(project).roots == {}


def test_a_truncated_cache_object_is_never_served_and_is_written_again(project: Path) -> None:
    # What a crash can leave, since objects are not fsynced (cache.py): a short object.
    service.add(ctx(project), ["model.bin"])
    ref = service.read_table(project).refs[0]
    cache = ObjectCache(Path(os.environ["ENVBUILD_CACHE"]))
    obj = cache.path("sha256", ref.hexdigest)
    os.chmod(obj, 0o644)
    obj.write_bytes(obj.read_bytes()[:1000])
    assert not cache.has("sha256", ref.hexdigest, ref.size)
    service.add(ctx(project), ["model.bin"])  # the file is unchanged, the object is written again
    assert obj.read_bytes() == (project / "model.bin").read_bytes()
    os.chmod(obj, 0o644)
    obj.write_bytes(b"")
    (project / "model.bin").unlink()
    with pytest.raises(IntegrityError, match="corrupt cache object"):
        service.checkout(ctx(project))
    assert not obj.exists() and not (project / "model.bin").exists()


_batch_pids: Path | None = None  # set before the workers fork: where each batch notes its pid
_real_batch: Any = None


def _noting_batch(*args: object, **kw: object) -> object:
    assert _batch_pids is not None
    (_batch_pids / str(os.getpid())).touch()
    return _real_batch(*args, **kw)


def test_many_files_go_to_worker_processes(project: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from envbuild.data import hashing

    global _batch_pids, _real_batch
    many = project / "many"
    many.mkdir()
    for i in range(300):
        (many / f"f{i:04d}").write_bytes(os.urandom(64) + str(i).encode())
    age(many)
    monkeypatch.setattr(hashing, "BATCH_FILES", 16)
    serial = service.scan(DataContext.open(project, workers=1), "many", rehash=True)
    monkeypatch.setattr(hashing, "PARALLEL_MIN_FILES", 100)
    _batch_pids, _real_batch = tmp_path / "pids", hashing._hash_batch
    _batch_pids.mkdir()
    monkeypatch.setattr(hashing, "_hash_batch", _noting_batch)
    parallel = service.scan(DataContext.open(project, workers=2), "many", rehash=True)
    assert parallel.digest == serial.digest and parallel.hashed == 300
    assert parallel.hexdigests == serial.hexdigests
    pids = {int(p.name) for p in _batch_pids.iterdir()}
    assert pids and os.getpid() not in pids  # every batch ran in a worker process


def test_workers_hash_while_the_walk_goes_on(project: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from envbuild.data import hashing

    many = project / "many"
    for d in range(10):
        (many / f"d{d}").mkdir(parents=True)
        for i in range(30):
            (many / f"d{d}" / f"f{i:02d}").write_bytes(os.urandom(64) + bytes([d, i]))
    age(many)
    serial = service.scan(DataContext.open(project, workers=1), "many", rehash=True)
    monkeypatch.setattr(hashing, "PARALLEL_MIN_FILES", 50)
    monkeypatch.setattr(hashing, "BATCH_FILES", 16)
    submitted: list[int] = []  # batches sent to the workers, counted as each directory is walked
    real_submit, real_walk = hashing.Hasher._submit, walk_chunks

    def counting_submit(self: hashing.Hasher) -> None:
        submitted.append(1)
        real_submit(self)

    def noting_walk(*args: Any) -> Any:
        kind, chunks = real_walk(*args)

        def noted() -> Any:
            for chunk in chunks:
                seen.append(len(submitted))
                yield chunk
        return kind, noted()

    seen: list[int] = []
    monkeypatch.setattr(hashing.Hasher, "_submit", counting_submit)
    monkeypatch.setattr(service, "walk_chunks", noting_walk)
    parallel = service.scan(DataContext.open(project, workers=2), "many", rehash=True,
                            store=True)
    assert parallel.digest == serial.digest and parallel.hexdigests == serial.hexdigests
    # Batches sent before each directory's files are handed over: the workers start at 50 files
    # and get every 16 from then on, long before the walk's last directory.
    assert seen == [0, 0, 3, 5, 7, 9, 11, 13, 15, 16]
    assert sum(submitted) == 19  # 300 files in batches of 16


def test_a_walk_error_after_the_workers_started_stops_them(project: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    import multiprocessing

    from envbuild.data import hashing

    many = project / "many"
    (many / "z").mkdir(parents=True)
    for i in range(300):
        (many / f"f{i:03d}").write_bytes(os.urandom(64) + str(i).encode())
    (many / "z" / "out").symlink_to("/etc/hostname")  # walked after the 300 files above it
    monkeypatch.setattr(hashing, "PARALLEL_MIN_FILES", 50)
    monkeypatch.setattr(hashing, "BATCH_FILES", 16)
    lock_before = (project / LOCK_FILE).read_bytes()
    with pytest.raises(DataError, match="symlink leaves the project") as caught:
        service.add(DataContext.open(project, workers=2), ["many"])
    assert caught.value.path == "many/z/out"
    assert (project / LOCK_FILE).read_bytes() == lock_before
    assert multiprocessing.active_children() == []  # the workers were stopped and joined
    cache = Path(os.environ["ENVBUILD_CACHE"])
    assert not [p for p in (cache / "tmp").rglob("*") if p.is_file()]  # no temp left behind


def test_a_scan_runs_without_the_cyclic_gc_and_turns_it_back_on(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    seen: list[bool] = []

    def noting_walk(*args: Any) -> Any:
        seen.append(gc.isenabled())
        return walk_chunks(*args)

    monkeypatch.setattr(service, "walk_chunks", noting_walk)
    assert gc.isenabled()
    service.scan(ctx(project), "data", rehash=True)
    assert seen == [False] and gc.isenabled()
    (project / "data" / "sub" / "loop").symlink_to("..")
    with pytest.raises(DataError, match="symlink loop"):
        service.scan(ctx(project), "data", rehash=True)
    assert seen == [False, False] and gc.isenabled()  # on again after an error too


def test_dvcignore_rules(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / ".dvc").mkdir(parents=True)
    (root / "proj" / "data").mkdir(parents=True)
    (root / ".dvcignore").write_text("# comment\n*.log\n!keep.log\nscratch/\n")
    (root / "proj" / "data" / ".dvcignore").write_text("keep.log\n")
    ignore = DvcIgnore(root / "proj")
    assert ignore.ignored("data/x.log", False) and not ignore.ignored("keep.log", False)
    assert ignore.ignored("data/keep.log", False)  # the deeper file has the last word
    assert ignore.ignored("data/scratch", True) and not ignore.ignored("data/scratch", False)
    assert ignore.ignored("data/.git", False) and ignore.ignored("data/.dvc", True)
    assert not ignore.ignored("data/x.csv", False)
    plain = DvcIgnore(tmp_path / "elsewhere")  # no .dvcignore anywhere: only DVC's defaults
    assert plain.ignored(".git", True) and not plain.ignored("a.log", False)


def test_big_files_read_ahead_in_a_second_thread(project: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from envbuild.data import hashing

    monkeypatch.setattr(hashing, "BIG_FILE", 1 << 20)  # the read-ahead path from 1 MiB on
    big = project / "big.bin"
    data = os.urandom(5 * hashing.BUFFER_SIZE + 12345)
    big.write_bytes(data)
    cache = ObjectCache(Path(os.environ["ENVBUILD_CACHE"]))
    seen: list[int] = []
    fh = cache.store_file(str(big), on_bytes=seen.append)
    assert fh.hexdigest == hashlib.sha256(data).hexdigest() and sum(seen) == len(data)
    assert len(seen) == 6  # block by block, in order: the stored bytes are the file's
    assert cache.verified("sha256", fh.hexdigest).read_bytes() == data

    def grow(_: int) -> None:  # a writer appending while the file is read
        with open(big, "ab") as f:
            f.write(b"more")

    with pytest.raises(DataError, match="changed while it was hashed"):
        hashing.hash_file(str(big), on_bytes=grow)
    big.write_bytes(data[::-1])
    with monkeypatch.context() as patch:  # the cache's disk fills up halfway: the reader stops
        patch.setattr("envbuild.data.cache.os.write",
                      lambda fd, b: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
        with pytest.raises(DataError, match="disk full"):
            cache.store_file(str(big))
    import threading

    assert not [t for t in threading.enumerate() if t.name == "envbuild-read-ahead"]
    assert not [f for f in (cache.root / "tmp").rglob("*") if f.is_file()]


def test_a_file_edited_between_hash_and_hard_link_is_not_stored(project: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 ) -> None:
    from envbuild.data import hashing

    src = project / "model.bin"
    real = hashing.hash_file

    def hash_then_edit(path: str, *args: Any, **kw: Any) -> Any:
        fh = real(path, *args, **kw)
        if path == str(src) and "sink" not in kw:  # the hash before the link, not the copy's
            with open(src, "ab") as f:
                f.write(b"edited after the hash")
        return fh

    monkeypatch.setattr("envbuild.data.cache.hash_file", hash_then_edit)
    cache = ObjectCache(Path(os.environ["ENVBUILD_CACHE"]))
    with pytest.raises(IntegrityError, match="is not the expected") as info:
        cache.store_link(str(src))
    assert "changed" in info.value.hint
    assert not list(cache.root.rglob("*/??/*"))  # nothing stored under any name
    assert src.stat().st_mode & 0o200  # not linked, so not made read-only
