"""Tree digests, refs and the [data] table: the pure core of envbuild.data."""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envbuild.data.imports import parse_lfs_pointer, refs_from_dvc_file, refs_from_dvc_lock
from envbuild.data.refs import DataRef, DataTable
from envbuild.data.service import DataContext, scan
from envbuild.data.tree import (
    TreeEntry,
    dvc_tree_digest,
    parse_dvc_listing,
    parse_listing,
    render_listing,
    render_walk,
    tree_digest,
)
from envbuild.errors import EnvbuildError
from envbuild.lock.bundle import parse_lock, render_lock
from tests.lockfiles import placeholder_lock


def independent_tree_digest(root: Path) -> str:
    """The documented canonical form, computed here without envbuild's code."""
    lines = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            data = full.read_bytes()
            x = "x" if os.stat(full).st_mode & 0o100 else "-"
            lines.append((rel.encode(), b"%s\0%d\0%s\0%s\n" % (
                rel.encode(), len(data), x.encode(), hashlib.sha256(data).hexdigest().encode())))
    body = b"envbuild-tree-v1\n" + b"".join(line for _, line in sorted(lines))
    return "sha256:" + hashlib.sha256(body).hexdigest()


FILES = {"a.csv": b"a,b\n1,2\n", "sub/b.bin": bytes(range(256)) * 40, "sub/deeper/c": b"",
         "z y/with space.txt": b"space", "Upper.txt": b"U", "a-b/x": b"dash", "a/b": b"slash"}


def make_tree(root: Path, order: list[str]) -> None:
    for rel in order:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(FILES[rel])


def digest_of(project: Path, rel: str, tmp_path: Path) -> str:
    ctx = DataContext.open(project, cache_root=tmp_path / "cache", workers=1)
    return scan(ctx, rel).digest


def test_directory_digest_is_order_free_and_matches_an_independent_computation(
        tmp_path: Path) -> None:
    names = sorted(FILES)
    shuffled = names[:]
    random.Random(7).shuffle(shuffled)
    make_tree(tmp_path / "p1" / "d", names)
    make_tree(tmp_path / "p2" / "d", list(reversed(shuffled)))
    one = digest_of(tmp_path / "p1", "d", tmp_path)
    two = digest_of(tmp_path / "p2", "d", tmp_path)
    assert one == two == independent_tree_digest(tmp_path / "p1" / "d")


@pytest.mark.parametrize("change", ["byte", "rename", "add", "chmod", "empty-file"])
def test_every_change_changes_the_directory_digest(tmp_path: Path, change: str) -> None:
    root = tmp_path / "p" / "d"
    make_tree(root, sorted(FILES))
    before = digest_of(tmp_path / "p", "d", tmp_path)
    if change == "byte":
        data = bytearray((root / "sub/b.bin").read_bytes())
        data[100] ^= 1
        (root / "sub/b.bin").write_bytes(bytes(data))
    elif change == "rename":
        (root / "a.csv").rename(root / "a2.csv")
    elif change == "add":
        (root / "new").write_bytes(b"")
    elif change == "chmod":
        os.chmod(root / "a.csv", 0o755)
    else:
        (root / "sub/deeper/c").write_bytes(b"\0")
    after = digest_of(tmp_path / "p", "d", tmp_path)
    assert after != before
    assert after == independent_tree_digest(root)


def test_a_file_digest_is_its_sha256(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello\n")
    ctx = DataContext.open(tmp_path, cache_root=tmp_path / "cache")
    assert scan(ctx, "f").digest == "sha256:" + hashlib.sha256(b"hello\n").hexdigest()


entries = st.lists(
    st.builds(TreeEntry,
              path=st.lists(st.text(st.characters(blacklist_characters="/\0",
                                                  blacklist_categories=("Cs",)),
                                    min_size=1, max_size=8).filter(lambda s: s not in (".", "..")),
                            min_size=1, max_size=3).map("/".join),
              size=st.integers(0, 2**40), executable=st.booleans(),
              hexdigest=st.binary(min_size=32, max_size=32).map(bytes.hex)),
    max_size=12, unique_by=lambda e: e.path)


@given(entries, st.randoms())
def test_listing_round_trips_and_ignores_input_order(items: list[TreeEntry],
                                                     rnd: random.Random) -> None:
    shuffled = items[:]
    rnd.shuffle(shuffled)
    data = render_listing(items)
    assert render_listing(shuffled) == data
    assert sorted(parse_listing(data), key=lambda e: e.path) == sorted(items, key=lambda e: e.path)
    assert tree_digest(items) == "sha256:" + hashlib.sha256(data).hexdigest()


@given(entries, st.randoms())
def test_a_walks_listing_is_the_canonical_listing(items: list[TreeEntry],
                                                  rnd: random.Random) -> None:
    # Paths that are prefixes of others, and names around "/" in code point order.
    items = items + [TreeEntry(path=p, size=1, executable=False, hexdigest="ab" * 32)
                     for p in ("pre", "pre.x", "pre-x", "pre/x", "pre x", "pre/x/y", "pre0")
                     if p not in {e.path for e in items}]
    rnd.shuffle(items)
    walked = [(e.path, e.size, 0, i, 0o100755 if e.executable else 0o100644)
              for i, e in enumerate(items)]
    assert render_walk(walked, [e.hexdigest for e in items]) == render_listing(items)


def test_a_walks_listing_orders_undecodable_names_by_their_bytes() -> None:
    names = [os.fsdecode(b"a\xff"), "a\u00e9", "a~", os.fsdecode(b"a\xc3")]
    walked = [(n, 1, 0, i, 0o100644) for i, n in enumerate(names)]
    data = render_walk(walked, ["cd" * 32] * len(names))
    paths = [line.split(b"\0")[0] for line in data.splitlines()[1:]]
    assert paths == sorted(os.fsencode(n) for n in names)


@pytest.mark.parametrize("bad", ["../x", "/abs", "a//b", "a/./b", "", "a/.."])
def test_listing_refuses_paths_that_leave_the_directory(bad: str) -> None:
    entry = TreeEntry(path=bad, size=1, executable=False, hexdigest="0" * 64)
    with pytest.raises(ValueError):
        render_listing([entry])
    raw = b"envbuild-tree-v1\n" + bad.encode() + b"\x001\x00-\x00" + b"0" * 64 + b"\n"
    with pytest.raises(ValueError):
        parse_listing(raw)


def test_listing_refuses_non_canonical_order() -> None:
    a = b"a\x001\x00-\x00" + b"0" * 64 + b"\n"
    b = b"b\x001\x00-\x00" + b"0" * 64 + b"\n"
    assert parse_listing(b"envbuild-tree-v1\n" + a + b)
    with pytest.raises(ValueError):
        parse_listing(b"envbuild-tree-v1\n" + b + a)


def test_dvc_tree_digest_matches_what_dvc_3_wrote() -> None:
    # `dvc add d` (DVC 3.67) of d/a.txt = "hello\n" and d/sub/b.bin = "x" recorded this md5.
    items = [TreeEntry(path="sub/b.bin", size=1, executable=True,
                       hexdigest=hashlib.md5(b"x").hexdigest()),
             TreeEntry(path="a.txt", size=6, executable=False,
                       hexdigest=hashlib.md5(b"hello\n").hexdigest())]
    assert dvc_tree_digest(items) == "md5:eaf8a86d902a6817a4a031e3cbd7c606"
    dvc_dir = json.dumps([{"md5": e.hexdigest, "relpath": e.path}
                          for e in sorted(items, key=lambda e: e.path)], sort_keys=True)
    assert [e.path for e in parse_dvc_listing(dvc_dir.encode())] == ["a.txt", "sub/b.bin"]


def test_dvc_orders_by_path_string_as_dvc_does() -> None:
    # Real `dvc add` wrote a-b/c.txt before a.csv before a/d.txt (plain string order).
    items = [TreeEntry(path=p, size=1, executable=False, hexdigest="0" * 32)
             for p in ("a/d.txt", "a.csv", "a-b/c.txt")]
    listing = [{"md5": "0" * 32, "relpath": p} for p in ("a-b/c.txt", "a.csv", "a/d.txt")]
    expected = hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest()
    assert dvc_tree_digest(items) == "md5:" + expected


# ---- refs and the lock -------------------------------------------------------------------------


def ref(path: str, digest: str = "sha256:" + "1" * 64, kind: str = "file") -> DataRef:
    return DataRef(path=path, kind=kind, digest=digest, size=3, files=1)


def test_table_round_trips_through_the_lock_and_enters_the_bundle_id() -> None:
    table = DataTable(refs=(ref("b.bin"), ref("a dir", kind="dir"),
                            DataRef(path="m.csv", kind="file", digest="md5:" + "2" * 32, size=1,
                                    files=1, source="dvc", origin="m.csv.dvc")))
    assert [r.path for r in table.refs] == ["a dir", "b.bin", "m.csv"]
    assert DataTable.from_dict(table.to_dict()) == table
    lock = placeholder_lock(data=table.to_dict())
    parsed = parse_lock(render_lock(lock).decode())
    assert DataTable.from_dict(parsed.data) == table
    assert b'[data.refs."a dir"]' in render_lock(lock)
    other = placeholder_lock(data=table.with_refs([ref("b.bin", "sha256:" + "3" * 64)]).to_dict())
    assert other.bundle_id != lock.bundle_id != placeholder_lock().bundle_id
    reordered = placeholder_lock(data=DataTable(refs=tuple(reversed(table.refs))).to_dict())
    assert render_lock(reordered) == render_lock(lock)


def test_table_refuses_overlapping_refs_and_replaces_inner_ones() -> None:
    with pytest.raises(ValueError):
        DataTable(refs=(ref("d", kind="dir"), ref("d/x")))
    table = DataTable(refs=(ref("d/x"), ref("e")))
    assert [r.path for r in table.with_refs([ref("d", kind="dir")]).refs] == ["d", "e"]
    assert table.select(["d"]) == (ref("d/x"),)
    assert table.select([]) == table.refs
    with pytest.raises(KeyError):
        table.select(["nope"])


@pytest.mark.parametrize("bad", [{"path": "../x"}, {"kind": "link"}, {"digest": "sha1:00"},
                                 {"digest": "sha256:" + "0" * 63}, {"source": "git"}])
def test_bad_refs_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        DataRef(**{"path": "x", "kind": "file", "digest": "sha256:" + "0" * 64, "size": 1, "files": 1,
                   **bad})  # type: ignore[arg-type]


# ---- imports (pure parsing) --------------------------------------------------------------------


def test_dvc_files_become_md5_refs_relative_to_the_dvc_file() -> None:
    text = ("outs:\n- md5: eaf8a86d902a6817a4a031e3cbd7c606.dir\n  size: 7\n  nfiles: 2\n"
            "  hash: md5\n  path: d\n")
    (r,) = refs_from_dvc_file(text, origin="data/d.dvc")
    assert (r.path, r.kind, r.digest, r.files, r.source, r.object_name) == (
        "data/d", "dir", "md5:eaf8a86d902a6817a4a031e3cbd7c606", 2, "dvc",
        "eaf8a86d902a6817a4a031e3cbd7c606.dir")
    lock = ("schema: '2.0'\nstages:\n  gen:\n    cmd: echo\n    outs:\n    - path: out.txt\n"
            "      hash: md5\n      md5: dd5c07036f2975ff4bce568b6511d3bc\n      size: 6\n")
    (o,) = refs_from_dvc_lock(lock, origin="dvc.lock")
    assert (o.path, o.kind, o.digest) == ("out.txt", "file", "md5:dd5c07036f2975ff4bce568b6511d3bc")


@pytest.mark.parametrize("text", [
    "outs:\n- md5: dd5c07036f2975ff4bce568b6511d3bc\n  path: f\n",  # DVC 2: no `hash: md5`
    "outs:\n- hash: md5\n  md5: dd5c07036f2975ff4bce568b6511d3bc\n  path: ../../etc/passwd\n",
    "outs: 3\n", "[not yaml\n",
])
def test_bad_dvc_files_are_clear_errors(text: str) -> None:
    with pytest.raises(EnvbuildError) as info:
        refs_from_dvc_file(text, origin="x.dvc")
    assert "x.dvc" in info.value.message and info.value.hint is not None


def test_lfs_pointer_parsing() -> None:
    oid = hashlib.sha256(b"content").hexdigest()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize 7\n".encode()
    assert parse_lfs_pointer(pointer) == (oid, 7)
    assert parse_lfs_pointer(pointer.replace(b"sha256:", b"sha1:")) is None
    assert parse_lfs_pointer(b"content") is None
    assert parse_lfs_pointer(pointer + b"x" * 2000) is None
