"""envbuild data add / status / verify / checkout / push / pull / import-lfs on real files.

Local only: a temp project, a temp cache, a `file://` remote. S3 and real DVC are in
tests/integration/test_data_*.py.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import multiprocessing
import os
import socket
import stat
import time
from pathlib import Path

import pytest

from envbuild.cli.main import main
from envbuild.data import service
from envbuild.data.cache import ObjectCache
from envbuild.data.errors import DataError
from envbuild.data.refs import DataTable
from envbuild.data.service import DataContext
from envbuild.data.statcache import STAT_CACHE
from envbuild.errors import IntegrityError, LockError
from envbuild.lock.bundle import parse_lock
from tests.lockfiles import write_placeholder_lock

OLD = time.time() - 3600  # older than the stat cache's racy window


def age(root: Path) -> None:
    for dirpath, _, names in os.walk(root):
        for name in names:
            os.utime(Path(dirpath) / name, (OLD, OLD))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    p = tmp_path / "proj"
    (p / "data" / "sub").mkdir(parents=True)
    write_placeholder_lock(p)
    (p / "envbuild.toml").write_text('name = "x"\nrequirements = ["r.in"]\n'
                                     '[data]\npaths = ["data", "model.bin"]\n')
    (p / "data" / "a.csv").write_bytes(b"a,b\n1,2\n")
    (p / "data" / "sub" / "b.bin").write_bytes(os.urandom(5000))
    (p / "data" / "run.sh").write_bytes(b"#!/bin/sh\n")
    os.chmod(p / "data" / "run.sh", 0o755)
    (p / "model.bin").write_bytes(os.urandom(70000))
    age(p)
    monkeypatch.setenv("ENVBUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(p)
    return p


def ctx(project: Path, **kw: object) -> DataContext:
    return DataContext.open(project, **kw)  # type: ignore[arg-type]


def table(project: Path) -> DataTable:
    return DataTable.from_dict(parse_lock((project / "envbuild.lock").read_text()).data)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_pins_spec_paths_into_the_lock_and_the_cache(project: Path) -> None:
    outcome = service.add(ctx(project), [])
    refs = {r.path: r for r in table(project).refs}
    assert set(refs) == {"data", "model.bin"}
    assert refs["model.bin"].digest == "sha256:" + hashlib.sha256(
        (project / "model.bin").read_bytes()).hexdigest()
    assert refs["data"].files == 3 and refs["data"].kind == "dir"
    assert outcome.bundle == parse_lock((project / "envbuild.lock").read_text()).bundle_id
    cache = ObjectCache(Path(os.environ["ENVBUILD_CACHE"]))
    obj = cache.path("sha256", refs["model.bin"].hexdigest)
    assert obj.read_bytes() == (project / "model.bin").read_bytes()
    assert not os.stat(obj).st_mode & 0o222  # read-only
    assert cache.has("sha256", refs["data"].hexdigest)  # the listing
    assert not [f for f in (cache.root / "tmp").rglob("*") if f.is_file()]
    assert (project / ".envbuild" / ".gitignore").read_text().endswith("*\n")


def test_add_needs_a_lock_and_refuses_bad_paths(project: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="outside the project"):
        service.add(ctx(project), [str(tmp_path)])
    with pytest.raises(DataError, match="not found"):
        service.add(ctx(project), ["nope"])
    service.add(ctx(project), ["data"])
    with pytest.raises(DataError, match="inside the data ref"):
        service.add(ctx(project), ["data/a.csv"])
    (project / "envbuild.lock").unlink()
    with pytest.raises(LockError) as info:
        service.add(ctx(project), ["data"])
    assert "envbuild lock" in info.value.hint


def test_status_after_touch_rehashes_that_file_alone(project: Path) -> None:
    service.add(ctx(project), [])
    first = service.check(ctx(project), rehash=False)
    assert first.ok and first.hashed == 0  # everything answered by the stat cache
    (project / "data" / "sub" / "b.bin").touch()  # mtime only
    after = service.check(ctx(project), rehash=False)
    assert after.ok and after.hashed == 1
    verify = service.check(ctx(project), rehash=True)
    assert verify.ok and verify.hashed == 4


def test_status_and_verify_name_every_changed_file(project: Path) -> None:
    service.add(ctx(project), [])
    (project / "data" / "a.csv").write_bytes(b"a,b\n1,3\n")
    (project / "data" / "new.txt").write_bytes(b"n")
    (project / "data" / "sub" / "b.bin").unlink()
    os.chmod(project / "data" / "run.sh", 0o644)
    (project / "model.bin").unlink()
    states = {s.ref.path: s for s in service.check(ctx(project), rehash=True).states}
    assert states["model.bin"].state == "missing"
    assert states["data"].state == "changed"
    assert dict(states["data"].changes) == {"data/a.csv": "modified", "data/new.txt": "added",
                                            "data/sub/b.bin": "removed", "data/run.sh": "mode"}


def test_a_corrupt_or_missing_stat_cache_only_costs_a_rehash(project: Path) -> None:
    service.add(ctx(project), [])
    (project / STAT_CACHE).write_text("{not json")
    outcome = service.check(ctx(project), rehash=False)
    assert outcome.ok and outcome.hashed == 4
    assert service.check(ctx(project), rehash=False).hashed == 0  # rewritten


def test_same_size_same_mtime_edit_is_caught_by_the_racy_rule(project: Path) -> None:
    # A file written within the racy window of its hash is never trusted from the stat cache.
    (project / "fresh.txt").write_bytes(b"one")
    service.add(ctx(project), ["fresh.txt"])
    st = os.stat(project / "fresh.txt")
    (project / "fresh.txt").write_bytes(b"two")
    os.utime(project / "fresh.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    (state,) = service.check(ctx(project), ["fresh.txt"], rehash=False).states
    assert state.state == "changed"


def test_checkout_restores_refuses_modified_files_and_force_keeps_them(project: Path) -> None:
    service.add(ctx(project), [])
    original = (project / "data" / "a.csv").read_bytes()
    (project / "data" / "a.csv").write_bytes(b"edited")
    (project / "data" / "extra").write_bytes(b"mine")
    (project / "model.bin").unlink()
    lock_before = (project / "envbuild.lock").read_bytes()
    with pytest.raises(DataError, match="modified file"):
        service.checkout(ctx(project))
    assert (project / "data" / "a.csv").read_bytes() == b"edited"  # nothing changed
    assert not (project / "model.bin").exists()
    outcome = service.checkout(ctx(project), force=True)
    assert set(outcome.written) == {"data/a.csv", "model.bin"}
    assert outcome.removed == ("data/extra",)
    assert (project / "data" / "a.csv").read_bytes() == original
    assert os.stat(project / "data" / "run.sh").st_mode & 0o100
    cache = ObjectCache(Path(os.environ["ENVBUILD_CACHE"]))
    assert cache.has("sha256", hashlib.sha256(b"edited").hexdigest())  # --force kept it
    assert service.check(ctx(project), rehash=True).ok
    assert (project / "envbuild.lock").read_bytes() == lock_before


def test_checkout_overwrites_a_cached_older_version_without_force(project: Path) -> None:
    service.add(ctx(project), ["model.bin"])
    old_lock = (project / "envbuild.lock").read_bytes()
    old = (project / "model.bin").read_bytes()
    (project / "model.bin").write_bytes(b"v2")
    service.add(ctx(project), ["model.bin"])
    (project / "envbuild.lock").write_bytes(old_lock)  # e.g. `git checkout` of an older commit
    service.checkout(ctx(project))  # v2 is in the cache: nothing is lost, no --force needed
    assert (project / "model.bin").read_bytes() == old


@pytest.mark.parametrize("link", ["copy", "hardlink", "auto"])
def test_checkout_link_modes(project: Path, link: str) -> None:
    service.add(ctx(project), [])
    (project / "model.bin").unlink()
    (project / "data" / "run.sh").unlink()
    outcome = service.checkout(ctx(project), link=link)
    assert service.check(ctx(project), rehash=True).ok
    assert os.stat(project / "data" / "run.sh").st_mode & 0o100
    # An executable is never hard-linked; auto clones only where the file system can.
    expected = {"copy": {"copy": 2}, "hardlink": {"copy": 1, "hardlink": 1},
                "auto": {"reflink" if can_clone(project) else "copy": 2}}[link]
    assert dict(outcome.how) == expected


def can_clone(where: Path) -> bool:
    """Whether `where`'s file system makes reflinks (ext4 does not; btrfs and xfs do)."""
    src, dest = where / ".probe-src", where / ".probe-dest"
    src.write_bytes(b"x" * 4096)
    try:
        with open(src, "rb") as s, open(dest, "wb") as d:
            fcntl.ioctl(d.fileno(), 0x40049409, s.fileno())  # FICLONE
        return True
    except OSError:
        return False
    finally:
        src.unlink()
        dest.unlink(missing_ok=True)


def test_checkout_link_reflink_refuses_before_writing_where_it_cannot_clone(
        project: Path) -> None:
    if can_clone(project):
        pytest.skip("this file system makes reflinks")
    service.add(ctx(project), [])
    (project / "model.bin").unlink()
    (project / "data" / "run.sh").unlink()
    with pytest.raises(DataError, match="cannot clone"):
        service.checkout(ctx(project), link="reflink")
    assert not (project / "model.bin").exists() and not (project / "data" / "run.sh").exists()
    assert not [p for p in project.rglob("*") if "envbuild-" in p.name]  # no probe left


def test_checkout_refuses_a_corrupt_cache_object(project: Path) -> None:
    service.add(ctx(project), ["model.bin"])
    ref = table(project).refs[0]
    cache = ObjectCache(Path(os.environ["ENVBUILD_CACHE"]))
    obj = cache.path("sha256", ref.hexdigest)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"rotten")
    (project / "model.bin").unlink()
    with pytest.raises(IntegrityError, match="corrupt cache object"):
        service.checkout(ctx(project))
    assert not (project / "model.bin").exists() and not obj.exists()
    assert not [p for p in project.iterdir() if "envbuild-" in p.name]  # no temp left behind


def test_push_pull_through_a_directory_remote(project: Path, tmp_path: Path) -> None:
    url = (tmp_path / "remote").as_uri()
    service.add(ctx(project), [])
    first = service.push(ctx(project), url)
    assert first.sent == 5 and first.present == 0  # 3 files, the listing, model.bin
    assert service.push(ctx(project), url).sent == 0  # only missing objects are sent
    expected = {p: (project / p).read_bytes() for p in ("data/a.csv", "data/sub/b.bin",
                                                         "model.bin")}
    import shutil

    shutil.rmtree(os.environ["ENVBUILD_CACHE"])
    shutil.rmtree(project / "data")
    (project / "model.bin").unlink()
    pulled = service.pull(ctx(project), url)
    assert pulled.sent == 5
    service.checkout(ctx(project))
    assert {p: (project / p).read_bytes() for p in expected} == expected
    assert service.check(ctx(project), rehash=True).ok


def test_pull_refuses_a_corrupt_remote_object(project: Path, tmp_path: Path) -> None:
    url = (tmp_path / "remote").as_uri()
    service.add(ctx(project), ["model.bin"])
    service.push(ctx(project), url)
    ref = table(project).refs[0]
    remote_obj = tmp_path / "remote" / "sha256" / ref.hexdigest[:2] / ref.hexdigest[2:]
    remote_obj.write_bytes(b"tampered")
    import shutil

    shutil.rmtree(os.environ["ENVBUILD_CACHE"])
    with pytest.raises(IntegrityError, match="corrupt") as info:
        service.pull(ctx(project), url)
    assert ref.hexdigest[2:] in info.value.message
    cache = ObjectCache(Path(os.environ["ENVBUILD_CACHE"]))
    assert not cache.has("sha256", ref.hexdigest)
    assert not [f for f in (cache.root / "tmp").rglob("*") if f.is_file()]


# ---- bad input -----------------------------------------------------------------------------


def test_symlinks_loops_leaving_the_project_and_special_files(project: Path,
                                                               tmp_path: Path) -> None:
    (project / "data" / "inside").symlink_to(project / "model.bin")
    service.add(ctx(project), ["data"])  # a link that stays inside is followed
    (project / "data" / "loop").symlink_to(project / "data")
    with pytest.raises(DataError, match="symlink loop") as info:
        service.add(ctx(project), ["data"])
    assert "data/loop" in info.value.message
    (project / "data" / "loop").unlink()
    (project / "data" / "self").symlink_to("self")
    with pytest.raises(DataError, match="symlink loop"):
        service.add(ctx(project), ["data"])
    (project / "data" / "self").unlink()
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    (project / "data" / "out").symlink_to(outside)
    with pytest.raises(DataError, match="leaves the project"):
        service.add(ctx(project), ["data"])
    (project / "data" / "out").unlink()
    os.mkfifo(project / "data" / "fifo")
    with pytest.raises(DataError, match="FIFO") as info:
        service.add(ctx(project), ["data"])
    assert "data/fifo" in info.value.message
    (project / "data" / "fifo").unlink()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(project / "data" / "s"))
        with pytest.raises(DataError, match="socket"):
            service.add(ctx(project), ["data"])
    finally:
        sock.close()
        (project / "data" / "s").unlink()
    try:
        os.mknod(project / "data" / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        return  # not root: no device files to test with
    with pytest.raises(DataError, match="device") as info:
        service.add(ctx(project), ["data"])
    assert "data/null" in info.value.message


def test_a_file_that_changes_while_hashed_is_refused(project: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from envbuild.data import hashing

    big = project / "big.bin"
    big.write_bytes(b"\0" * (3 * hashing.BUFFER_SIZE))
    real = hashing.hash_file

    def hash_and_append(path: str, *args: object, **kw: object) -> hashing.FileHash:
        grown = []

        def grow(_: int) -> None:
            if not grown:  # once, after the first block: a writer appending meanwhile
                grown.append(True)
                with open(path, "ab") as f:
                    f.write(b"more")

        return real(path, *args, on_bytes=grow, **{k: v for k, v in kw.items()  # type: ignore[arg-type]
                                                     if k != "on_bytes"})

    monkeypatch.setattr(hashing, "hash_file", hash_and_append)
    monkeypatch.setattr("envbuild.data.cache.hash_file", hash_and_append)
    lock_before = (project / "envbuild.lock").read_bytes()
    with pytest.raises(DataError, match="changed while it was hashed") as info:
        service.add(ctx(project, workers=1), ["big.bin"])
    assert "big.bin" in info.value.message
    assert (project / "envbuild.lock").read_bytes() == lock_before


def test_permission_denied_names_the_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def deny(path: str, *args: object, **kw: object) -> int:
        if str(path).endswith("a.csv"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(DataError, match="permission denied") as info:
        service.add(ctx(project, workers=1), ["data"])
    assert "data/a.csv" in info.value.message


def test_cache_disk_full_leaves_lock_and_cache_whole(project: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from envbuild.data import cache as cache_mod

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    lock_before = (project / "envbuild.lock").read_bytes()
    with monkeypatch.context() as patch:
        patch.setattr(cache_mod.os, "write", full)
        with pytest.raises(DataError, match="disk full"):
            service.add(ctx(project, workers=1), ["model.bin"])
    assert (project / "envbuild.lock").read_bytes() == lock_before
    root = Path(os.environ["ENVBUILD_CACHE"])
    assert not [f for f in (root / "tmp").rglob("*") if f.is_file()]
    assert not (root / "sha256").exists()


def _store(root: str, src: str, barrier: object, results: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    results.put(ObjectCache(Path(root)).store_file(src).hexdigest)  # type: ignore[attr-defined]


def test_two_processes_storing_the_same_object_at_once(project: Path, tmp_path: Path) -> None:
    src = project / "model.bin"
    root = tmp_path / "shared-cache"
    ctx_ = multiprocessing.get_context("fork")
    barrier, results = ctx_.Barrier(4), ctx_.Queue()
    procs = [ctx_.Process(target=_store, args=(str(root), str(src), barrier, results))
             for _ in range(4)]
    for p in procs:
        p.start()
    digests = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(set(digests)) == 1
    cache = ObjectCache(root)
    assert cache.verified("sha256", digests[0]).read_bytes() == src.read_bytes()
    assert not [f for f in (root / "tmp").rglob("*") if f.is_file()]


# ---- Git LFS -----------------------------------------------------------------------------------


def test_lfs_pointer_becomes_a_ref_and_is_checked_against_content(project: Path) -> None:
    content = b"weights" * 1000
    oid = hashlib.sha256(content).hexdigest()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(content)}\n"
    (project / "w.bin").write_text(pointer)
    outcome = service.import_lfs(ctx(project), ["w.bin"])
    (ref,) = outcome.refs
    assert (ref.digest, ref.size, ref.source) == ("sha256:" + oid, len(content), "git-lfs")
    (state,) = service.check(ctx(project), ["w.bin"], rehash=True).states
    assert state.state == "pointer" and state.ok
    with pytest.raises(DataError, match="not in the cache"):
        service.checkout(ctx(project), ["w.bin"])
    # Git LFS's own object store is read as a source of objects.
    lfs_obj = project / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    lfs_obj.parent.mkdir(parents=True)
    lfs_obj.write_bytes(content)
    service.checkout(ctx(project), ["w.bin"])
    assert (project / "w.bin").read_bytes() == content
    assert service.check(ctx(project), ["w.bin"], rehash=True).ok
    (project / "w.bin").write_bytes(content + b"!")
    (state,) = service.check(ctx(project), ["w.bin"], rehash=True).states
    assert state.state == "changed"


# ---- CLI -----------------------------------------------------------------------------------


def test_cli_add_status_verify_checkout_json(project: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "data", "add", "data", "model.bin", "--json")
    assert code == 0 and {r["path"] for r in json.loads(out)["refs"]} == {"data", "model.bin"}
    code, out, _ = run(capsys, "data", "status", "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    (project / "data" / "a.csv").write_bytes(b"changed")
    code, out, _ = run(capsys, "data", "status", "--json")
    payload = json.loads(out)
    assert code == 0 and payload["ok"] is False
    assert payload["refs"][0]["changes"] == [{"path": "data/a.csv", "change": "modified"}]
    code, out, err = run(capsys, "data", "verify")
    assert code == 7 and "data/a.csv" in err and "modified  data/a.csv" in out
    assert err.count("error: ") == 1 and err.count("hint: ") == 1
    code, out, _ = run(capsys, "data", "verify", "--json")
    assert code == 7 and json.loads(out)["exit_code"] == 7
    code, _, err = run(capsys, "data", "checkout")
    assert code == 1 and "--force" in err
    code, out, _ = run(capsys, "-C", str(project), "data", "checkout", "--force", "--json")
    assert code == 0 and json.loads(out)["written"] == ["data/a.csv"]


def test_cli_data_errors(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "data", "push")
    assert code == 1 and "--remote" in err
    code, _, err = run(capsys, "data", "status", "nope")
    assert code == 1 and "no data ref" in err
    code, _, _ = run(capsys, "data")
    assert code == 2


def test_spec_data_remote_is_the_default_remote(project: Path, tmp_path: Path) -> None:
    from envbuild.errors import SpecError
    from envbuild.spec.load import parse_spec

    url = (tmp_path / "r").as_uri()
    spec = project / "envbuild.toml"
    spec.write_text(spec.read_text() + f'remote = "{url}"\n')
    service.add(ctx(project), ["model.bin"])
    assert service.remote_url(project, None) == url
    assert service.push(ctx(project), service.remote_url(project, None)).sent == 1
    with pytest.raises(SpecError, match="data.remote"):
        parse_spec('name = "x"\n[data]\nremote = "ftp://h/x"\n')


def test_add_with_hard_links_stores_without_copying(project: Path) -> None:
    service.add(ctx(project), [], link="hardlink")
    ref = table(project).get("model.bin")
    assert ref is not None
    obj = ObjectCache(Path(os.environ["ENVBUILD_CACHE"])).path("sha256", ref.hexdigest)
    assert os.stat(obj).st_ino == os.stat(project / "model.bin").st_ino
    assert not os.stat(obj).st_mode & 0o222
    assert os.stat(project / "data" / "run.sh").st_mode & 0o100  # the exec bit stays
    status = service.check(ctx(project), rehash=False)
    assert status.ok and status.hashed == 0
    assert service.check(ctx(project), rehash=True).ok
