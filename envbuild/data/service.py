"""What the `envbuild data ...` commands do: the shell around refs, tree digests and the cache.

The `[data]` table is written back by re-rendering envbuild.lock atomically (render_lock after
dataclasses.replace), so the data digests enter the bundle id. `data add` and the imports need an
existing envbuild.lock: data pins belong to a bundle, and `envbuild lock` keeps them on re-lock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envbuild.data.cache import ObjectCache, default_cache_root, dvc_fallback, lfs_fallback
from envbuild.data.dvcignore import DvcIgnore
from envbuild.data.errors import DataError
from envbuild.data.hashing import Hasher, NoProgress, Progress, gc_paused
from envbuild.data.imports import LFS_MAX_POINTER, parse_lfs_pointer
from envbuild.data.quick import state_row
from envbuild.data.refs import DataRef, DataTable
from envbuild.data.statcache import StatCache, lock_sig, now_ns
from envbuild.data.tree import TreeEntry, parse_listing_for, render_dvc_listing, render_walk
from envbuild.data.walk import Entry, Ignore, project_path, walk_chunks
from envbuild.errors import EnvbuildError, IntegrityError, LockError


@dataclass(kw_only=True)
class DataContext:
    project: Path
    cache: ObjectCache
    progress: Progress = field(default_factory=NoProgress)
    workers: int | None = None
    stat: StatCache = field(init=False)
    _dvcignore: DvcIgnore | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.stat = StatCache.load(self.project)

    def ignore(self, algorithm: str) -> Ignore | None:
        """What a walk leaves out: for md5 refs (imported from DVC), what DVC left out."""
        if algorithm != "md5":
            return None
        if self._dvcignore is None:
            self._dvcignore = DvcIgnore(self.project)
        return self._dvcignore.ignored

    @classmethod
    def open(cls, project: Path, *, cache_root: Path | None = None,
             progress: Progress | None = None, workers: int | None = None) -> DataContext:
        project = project.absolute()
        cache = ObjectCache(cache_root or default_cache_root(),
                            fallbacks=(dvc_fallback(project), lfs_fallback(project)))
        return cls(project=project, cache=cache, progress=progress or NoProgress(), workers=workers)


# ---- scanning: what is on disk now ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Scan:
    rel: str  # the project path scanned
    kind: str
    digest: str
    size: int
    files: int
    walked: list[Entry]  # the walk (relative path "" for a file)
    hexdigests: list[str]  # the digest of each walked file, in the same order
    hashed: int  # files actually read
    listing: bytes | None = None  # a directory's listing, when it was rendered (not taken as known)

    @property
    def entries(self) -> tuple[TreeEntry, ...]:
        """A directory's files (relative to it); a file's one entry, under its own name."""
        name = posixpath_name(self.rel) if self.kind == "file" else ""
        return tuple(TreeEntry(path=e[0] or name, size=e[1], executable=bool(e[4] & 0o100),
                               hexdigest=h) for e, h in zip(self.walked, self.hexdigests))


def _listing_of(algorithm: str, walked: list[Entry], hexdigests: list[str]) -> bytes:
    """A walked directory's listing (tree.py); its hash is the directory's digest."""
    if algorithm == "sha256":  # from envbuild's own walk: no need to re-check each path
        return render_walk(walked, hexdigests)
    return render_dvc_listing(TreeEntry(path=e[0], size=e[1], executable=bool(e[4] & 0o100),
                                        hexdigest=h) for e, h in zip(walked, hexdigests))


@gc_paused
def scan(ctx: DataContext, rel: str, algorithm: str = "sha256", *, rehash: bool = False,
         store: bool = False, link: str = "copy", label: str = "hashing",
         select: frozenset[str] | None = None) -> Scan:
    """Digest of the project path `rel` as it is now; FileNotFoundError when it is absent.

    Files whose stat matches the stat cache are not read (unless `rehash`); a walk equal to the
    recorded one gives the recorded digest without a look at any single file. With `store`,
    every file is also put in the cache (a file already cached and unchanged is not read).
    With `select` (paths inside the directory `rel`): a table, made of only those files; one
    that is missing is left out of the listing (so the digest differs), and a storing scan
    refuses it.
    """
    started = now_ns()
    kind, chunks = walk_chunks(ctx.project, rel, ctx.ignore(algorithm))
    if select is not None:
        if kind != "dir":
            raise DataError("is a file, the lock has a table (a directory) here", path=rel,
                            hint="move the file away, then check out again")
        kind, chunks = "table", ([e for e in chunk if e[0] in select] for chunk in chunks)
    if not rehash and not store:
        # Most often nothing changed: the whole walk against the stat cache's, then done.
        walked = [e for chunk in chunks for e in chunk]
        same = ctx.stat.root(rel, kind, walked, algorithm)
        if same is not None:
            return Scan(rel=rel, kind=kind, digest=same[0], size=sum(e[1] for e in walked),
                        files=len(walked), walked=walked, hexdigests=same[1], hashed=0)
        chunks = iter([walked])
    known = {} if rehash else ctx.stat.files(rel)
    walked = []
    hexdigests: list[str] = []
    todo: list[int] = []
    top = os.path.join(ctx.project, rel)
    prefix = rel + "/"
    with Hasher(algorithm, store=ctx.cache.root if store else None, link=link,
                progress=ctx.progress, workers=ctx.workers) as hasher:
        # Files go to the hasher as the walk finds them: its workers start on the first
        # directories while the walk goes on.
        for chunk in chunks:
            for e in chunk:
                hit = known.get(e[0])
                hexdigest = hit[1].get(algorithm) if hit is not None and hit[0] == e else None
                if hexdigest is None or (store and not ctx.cache.has(algorithm, hexdigest, e[1])):
                    todo.append(len(walked))
                    hasher.add((f"{top}/{e[0]}" if e[0] else top,
                                prefix + e[0] if e[0] else rel, e[1]))
                    hexdigest = ""
                walked.append(e)
                hexdigests.append(hexdigest)
        if select is not None and store and len(walked) != len(select):
            gone = sorted(select - {e[0] for e in walked})
            raise DataError(f"{len(gone)} file(s) of the table version are missing, e.g. "
                            f"{gone[0]}", path=rel,
                            hint="a vacuum may have deleted them: pin a newer version, or "
                                 "restore the files first")
        if todo:
            ctx.progress.start(f"{label} {rel}", sum(walked[i][1] for i in todo), len(todo))
            try:
                hashed = hasher.finish()
            finally:
                ctx.progress.finish()
            for i, fh in zip(todo, hashed):
                hexdigests[i] = fh.hexdigest
                # What was read (a hard link made read-only since): the stat cache's key.
                walked[i] = (walked[i][0], *fh.stat)
    if kind == "file":
        listing, digest = None, f"{algorithm}:{hexdigests[0]}"
    else:
        listing = _listing_of(algorithm, walked, hexdigests)
        digest = f"{algorithm}:{hashlib.new(algorithm, listing).hexdigest()}"
    ctx.stat.record(rel, kind, walked, algorithm, hexdigests, digest, started)
    return Scan(rel=rel, kind=kind, digest=digest, size=sum(e[1] for e in walked),
                files=len(walked), walked=walked, hexdigests=hexdigests, hashed=len(todo),
                listing=listing)


def posixpath_name(rel: str) -> str:
    return rel.rsplit("/", 1)[-1]


# ---- the lock's [data] table ----------------------------------------------------------------------


def load_table(project: Path) -> tuple[Any, DataTable]:
    """The lock (checked: its bundle id must match) and its data table; for commands that write."""
    # lock.bundle, not lock.service's read_lock: that module brings the spec and the tool
    # runners along (about 10 ms of imports, on every `data add`).
    from envbuild.lock.bundle import LOCK_FILE, parse_lock

    try:
        text = (project / LOCK_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockError(f"no {LOCK_FILE} in {project}",
                        hint="run `envbuild lock` first: data refs are pinned into its lock"
                        ) from None
    lock = parse_lock(text)
    return lock, _table(lock.data)


def _table(data: Any) -> DataTable:
    try:
        return DataTable.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LockError(f"envbuild.lock: the [data] table is damaged: {exc}",
                        hint="re-add the data with `envbuild data add`") from None


def read_table(project: Path, stat: StatCache | None = None) -> DataTable:
    """Only the data table, for commands that write no lock (status, verify, checkout, push, pull).

    Plain tomllib: the bundle-id check (which renders the lock with tomlkit) is left to the
    commands that write. With `stat`, the table is also kept in the stat cache, keyed by the
    lock file's stat, for the no-change status (quick.py) that then parses no TOML at all.
    """
    import tomllib

    from envbuild.lock.bundle import FORMAT_VERSION, LOCK_FILE

    started = now_ns()
    try:
        with open(project / LOCK_FILE, "rb") as f:
            st = os.fstat(f.fileno())
            doc = tomllib.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise LockError(f"no {LOCK_FILE} in {project}",
                        hint="run `envbuild lock` first, then `envbuild data add`") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LockError(f"{LOCK_FILE} is damaged: {exc}", hint="re-run `envbuild lock`") from None
    if doc.get("version") != FORMAT_VERSION:
        raise LockError(f"{LOCK_FILE} has format version {doc.get('version')!r}; this envbuild "
                        f"reads {FORMAT_VERSION}", hint="re-run `envbuild lock`")
    table = _table(doc.get("data", {}))
    if stat is not None:
        stat.remember_lock(lock_sig(st), table.to_dict(), started)
    return table


def save_table(project: Path, lock: Any, table: DataTable) -> Any:
    from envbuild.files import write_atomic
    from envbuild.lock.bundle import LOCK_FILE, render_lock

    new = dataclasses.replace(lock, data=table.to_dict())
    write_atomic(project / LOCK_FILE, render_lock(new))
    return new


def spec_data(project: Path) -> Any:
    """The spec's [data] section, or None without a spec (data commands do not need one)."""
    from envbuild.spec.load import find_spec, parse_spec

    try:
        path, section = find_spec(project)
    except EnvbuildError:
        return None
    return parse_spec(path.read_text(encoding="utf-8"), file=path.name, section=section).data


# ---- add ------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class AddOutcome:
    refs: tuple[DataRef, ...]
    hashed: int
    bundle: str
    changed: bool


def add(ctx: DataContext, paths: Sequence[str], *, cwd: Path | None = None,
        link: str = "auto") -> AddOutcome:
    """Hash, store and pin.

    `link`: how files enter the cache. auto clones them where the file system can (btrfs, xfs)
    and copies them elsewhere; reflink only clones (an error where it cannot); copy always
    copies; hardlink links them (no copy; the working files become read-only).
    """
    lock, table = load_table(ctx.project)
    if not paths:
        spec = spec_data(ctx.project)
        if spec is None or not spec.paths:
            raise DataError("no paths given and the spec has no [data] paths",
                            hint="name them: `envbuild data add data/`, or list them under "
                                 "[data] paths in envbuild.toml")
        rels = [project_path(ctx.project, p, cwd=ctx.project) for p in spec.paths]
    else:
        rels = [project_path(ctx.project, p, cwd=cwd) for p in paths]
    new, hashed = [], 0
    for rel in dict.fromkeys(rels):
        try:
            found = _store(ctx, table, rel, link=link, label="adding",
                           again="add {} again instead")
        except FileNotFoundError:
            raise DataError("not found", path=rel, hint="paths are relative to the current "
                            "directory and must lie inside the project") from None
        hashed += found.hashed
        new.append(DataRef(path=rel, kind=found.kind, digest=found.digest, size=found.size,
                           files=found.files))
    ctx.stat.save()
    updated = table.with_refs(new)
    saved = save_table(ctx.project, lock, updated) if updated != table else lock
    return AddOutcome(refs=tuple(new), hashed=hashed, bundle=saved.bundle_id,
                      changed=updated != table)


def _store(ctx: DataContext, table: DataTable, rel: str, *, link: str, label: str, again: str,
           select: frozenset[str] | None = None) -> Scan:
    """Scan `rel` storing every file in the cache, and a tree's listing too: what a new ref of
    `add` or `import-delta` needs. `again` (with {} for the covering ref's path) is the hint
    when `rel` lies inside another ref."""
    covering = table.covering(rel)
    if covering is not None and covering.path != rel:
        raise DataError(f"lies inside the data ref {covering.path!r}", path=rel,
                        hint=again.format(covering.path))
    found = scan(ctx, rel, "sha256", store=True, link=link, label=label, select=select)
    if found.kind != "file":
        assert found.listing is not None  # a storing scan always renders it
        ctx.cache.store_bytes(found.listing, "sha256", found.digest.partition(":")[2])
    return found


# ---- remove ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RemoveOutcome:
    refs: tuple[DataRef, ...]
    bundle: str


def remove(ctx: DataContext, paths: Sequence[str], *, cwd: Path | None = None) -> RemoveOutcome:
    """Unpin refs: each PATH is a ref's path, or a directory holding refs (all of them go).

    Only the lock changes: the working files and the cache keep their bytes (an older lock, or a
    commit that still pins them, can check them out again). A path inside a ref is refused:
    unpinning part of a directory ref means adding the directory again without it.
    """
    if not paths:
        raise DataError("no paths given", hint="name the refs to unpin: `envbuild data remove "
                        "data/raw` (`envbuild show` lists them)")
    lock, table = load_table(ctx.project)
    for rel in (project_path(ctx.project, p, cwd=cwd) for p in paths):
        covering = table.covering(rel)
        if covering is not None and covering.path != rel:
            raise DataError(f"lies inside the data ref {covering.path!r}", path=rel,
                            hint=f"remove {covering.path} itself, or add it again without "
                                 "this path")
    gone = _select(table, ctx.project, paths, cwd)  # the refs at or under each path
    updated = DataTable(refs=tuple(r for r in table.refs if r not in gone))
    saved = save_table(ctx.project, lock, updated)
    return RemoveOutcome(refs=gone, bundle=saved.bundle_id)


# ---- status and verify ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RefState:
    ref: DataRef
    state: str  # ok | changed | missing | pointer (a Git LFS pointer, content not present)
    digest: str | None = None  # what is there now
    changes: tuple[tuple[str, str], ...] = ()  # (project path, added|removed|modified|mode)
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.state in ("ok", "pointer")

    def to_dict(self) -> dict[str, Any]:
        return state_row(path=self.ref.path, state=self.state, expected=self.ref.digest,
                         actual=self.digest, kind=self.ref.kind, source=self.ref.source,
                         changes=self.changes, note=self.note)


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckOutcome:
    states: tuple[RefState, ...]
    hashed: int

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.states)


def _listing(ctx: DataContext, ref: DataRef) -> tuple[TreeEntry, ...] | None:
    found = ctx.cache.find(ref.algorithm, ref.object_name)
    if found is None:
        return None
    try:
        return parse_listing_for(ref.algorithm, ctx.cache.read_verified(ref.algorithm,
                                                                        ref.object_name))
    except (ValueError, IntegrityError):
        return None


def _diff(ref: DataRef, expected: Iterable[TreeEntry], actual: Iterable[TreeEntry],
          ) -> tuple[tuple[str, str], ...]:
    want = {e.path: e for e in expected}
    have = {e.path: e for e in actual}
    out = []
    for path in sorted(set(want) | set(have)):
        w, h = want.get(path), have.get(path)
        if w is None:
            change = "added"
        elif h is None:
            change = "removed"
        elif w.hexdigest != h.hexdigest:
            change = "modified"
        elif ref.algorithm == "sha256" and w.executable != h.executable:
            change = "mode"
        else:
            continue
        out.append((f"{ref.path}/{path}", change))
    return tuple(out)


def _lfs_pointer_here(ctx: DataContext, ref: DataRef) -> bool:
    if ref.source != "git-lfs":
        return False
    path = ctx.project / ref.path
    try:
        if path.stat().st_size > LFS_MAX_POINTER:
            return False
        parsed = parse_lfs_pointer(path.read_bytes())
    except OSError:
        return False
    return parsed is not None and parsed[0] == ref.hexdigest


def _table_selection(ctx: DataContext, ref: DataRef) -> frozenset[str] | None:
    """The files of a table ref: from its log in the working tree (as delta.plan reads it),
    else from its listing in the cache; None when neither can be read.

    The commits are themselves part of the selection, so a log edited since the lock changes
    the digest whichever way the selection was found.
    """
    from envbuild.data.delta import DeltaError

    assert ref.version is not None
    try:
        return frozenset(delta_files(ctx.project / ref.path, ref.version)[1])
    except (DeltaError, OSError):
        listing = _listing(ctx, ref)
        return frozenset(e.path for e in listing) if listing is not None else None


def delta_files(table: Path, version: int | None) -> tuple[int, list[str]]:
    """(version, the files of the Delta table at `table` at it; default the newest), as
    envbuild/data/delta.py plans them from what `_delta_log/` holds."""
    from envbuild.data.delta import LOG_DIR, commit_name, plan, table_files

    how = plan(os.listdir(table / LOG_DIR), version)
    return how.version, table_files(lambda v: (table / commit_name(v)).read_bytes(), how,
                                    lambda names: _checkpoint_adds(table / LOG_DIR, names))


def _checkpoint_adds(log: Path, names: tuple[str, ...]) -> list[object]:
    """The `add` actions of a parquet checkpoint (its part files), read with pyarrow."""
    from envbuild.data.delta import DeltaError

    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        raise DeltaError("the log's first commits were cleaned up, and reading the checkpoint "
                         "that replaces them needs pyarrow (pip install pyarrow)") from None
    adds: list[object] = []
    for name in names:
        try:
            column = pq.read_table(log / name, columns=["add"]).column("add")
        except (OSError, KeyError, ValueError) as exc:
            raise DeltaError(f"cannot read checkpoint {name}: {exc}") from None
        adds += [a for a in column.to_pylist() if a is not None]
    return adds


def check_ref(ctx: DataContext, ref: DataRef, *, rehash: bool) -> tuple[RefState, int]:
    if _lfs_pointer_here(ctx, ref):
        return RefState(ref=ref, state="pointer", note="Git LFS pointer: the content is not "
                        "here (`git lfs pull` or `envbuild data checkout`)"), 0
    select = None
    if ref.kind == "table":
        select = _table_selection(ctx, ref)
        if select is None:
            return RefState(ref=ref, state="changed", note="its _delta_log cannot be read and "
                            "its listing is not in the cache: `envbuild data pull`, then "
                            "check out"), 0
    try:
        now = scan(ctx, ref.path, ref.algorithm, rehash=rehash, select=select,
                   label="verifying" if rehash else "hashing")
    except FileNotFoundError:
        return RefState(ref=ref, state="missing", note="not in the working tree"), 0
    if now.digest == ref.digest and now.kind == ref.kind:
        return RefState(ref=ref, state="ok", digest=now.digest), now.hashed
    changes: tuple[tuple[str, str], ...] = ((ref.path, "modified"),)
    note = ""
    if ref.is_tree and now.kind == ref.kind:
        listing = _listing(ctx, ref)
        if listing is None:
            changes = ()
            note = "the directory's listing is not in the cache: `envbuild data pull` to name " \
                   "the files that differ"
        else:
            changes = _diff(ref, listing, now.entries)
    elif ref.kind != now.kind:
        note = f"was a {ref.kind}, now a {now.kind}"
    return RefState(ref=ref, state="changed", digest=now.digest, changes=changes,
                    note=note), now.hashed


def _select(table: DataTable, project: Path, paths: Sequence[str], cwd: Path | None,
            ) -> tuple[DataRef, ...]:
    rels = [project_path(project, p, cwd=cwd) for p in paths]
    try:
        return table.select(rels)
    except KeyError as exc:
        raise DataError("no data ref holds this path", path=str(exc.args[0]),
                        hint="`envbuild show --json` lists the refs; `envbuild data add` adds one") \
            from None


def check(ctx: DataContext, paths: Sequence[str] = (), *, rehash: bool,
          cwd: Path | None = None) -> CheckOutcome:
    """`data status` (rehash=False: the stat cache decides) and `data verify` (rehash=True)."""
    table = read_table(ctx.project, ctx.stat)
    states, hashed = [], 0
    for ref in _select(table, ctx.project, paths, cwd):
        state, n = check_ref(ctx, ref, rehash=rehash)
        states.append(state)
        hashed += n
    ctx.stat.save()
    return CheckOutcome(states=tuple(states), hashed=hashed)


# ---- objects of refs --------------------------------------------------------------------------


def ref_objects(ctx: DataContext, ref: DataRef, listing: Sequence[TreeEntry] | None,
                ) -> list[tuple[str, str]]:
    """(algorithm, name) of every object a ref needs: the file, or the listing and its files."""
    if ref.kind == "file":
        return [(ref.algorithm, ref.hexdigest)]
    assert listing is not None
    return [(ref.algorithm, ref.object_name)] + sorted(
        {(ref.algorithm, e.hexdigest) for e in listing})


def need_listing(ctx: DataContext, ref: DataRef) -> tuple[TreeEntry, ...]:
    data = ctx.cache.read_verified(ref.algorithm, ref.object_name)
    try:
        return parse_listing_for(ref.algorithm, data)
    except ValueError as exc:
        raise IntegrityError(f"{ref.path}: the listing object is malformed: {exc}",
                             hint="re-add the directory") from None


# ---- checkout -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckoutOutcome:
    written: tuple[str, ...]
    removed: tuple[str, ...]
    kept: tuple[str, ...]  # overwritten with --force; their old bytes are in the cache
    unchanged: int
    how: tuple[tuple[str, int], ...] = ()  # (reflink | copy | hardlink, files written so)


def _current(ctx: DataContext, rel: str, algorithm: str,
             select: frozenset[str] | None = None) -> Scan | None:
    try:
        return scan(ctx, rel, algorithm, label="checking", select=select)
    except FileNotFoundError:
        return None


def checkout(ctx: DataContext, paths: Sequence[str] = (), *, force: bool = False,
             link: str = "auto", cwd: Path | None = None) -> CheckoutOutcome:
    """Make the working files match the lock, from the cache (run `pull` first for a remote).

    Plans everything first and writes nothing until every object is present and no modified,
    uncached file would be overwritten (unless `force`: then its bytes are stored in the cache
    first, so even a forced checkout loses nothing).
    """
    table = read_table(ctx.project)
    refs = _select(table, ctx.project, paths, cwd)
    writes: list[tuple[DataRef, str, str, bool]] = []  # ref, project path, object name, exec
    removes: list[str] = []
    at_risk: list[tuple[str, str]] = []  # (project path, algorithm): differs, not in the cache
    unchanged = 0
    for ref in refs:
        dest = ctx.project / ref.path
        if ref.kind == "file":
            if _lfs_pointer_here(ctx, ref):
                writes.append((ref, ref.path, ref.hexdigest, False))
                continue
            if dest.is_dir() and not dest.is_symlink():
                raise DataError("is a directory, the lock has a file here", path=ref.path,
                                hint="move the directory away, then check out again")
            now = _current(ctx, ref.path, ref.algorithm)
            if now is not None and now.digest == ref.digest:
                unchanged += 1
                continue
            if now is not None and not ctx.cache.has(ref.algorithm, now.entries[0].hexdigest):
                at_risk.append((ref.path, ref.algorithm))
            executable = now.entries[0].executable if now is not None else False
            writes.append((ref, ref.path, ref.hexdigest, executable))
            continue
        listing = need_listing(ctx, ref)
        if dest.exists() and not dest.is_dir():
            raise DataError("is a file, the lock has a directory here", path=ref.path,
                            hint="move the file away, then check out again")
        # A table's other files (later versions') are not the ref's: neither read nor removed.
        select = frozenset(e.path for e in listing) if ref.kind == "table" else None
        now = _current(ctx, ref.path, ref.algorithm, select) if dest.exists() else None
        have = {e.path: e for e in now.entries} if now is not None else {}
        want = {e.path: e for e in listing}
        for path, entry in sorted(want.items()):
            current = have.get(path)
            executable = entry.executable if ref.algorithm == "sha256" else (
                current.executable if current else False)
            if current is not None and current.hexdigest == entry.hexdigest and (
                    current.executable == executable):
                unchanged += 1
                continue
            if current is not None and not ctx.cache.has(ref.algorithm, current.hexdigest):
                at_risk.append((f"{ref.path}/{path}", ref.algorithm))
            writes.append((ref, f"{ref.path}/{path}", entry.hexdigest, executable))
        for path, current in sorted(have.items()):
            if path not in want:
                if not ctx.cache.has(ref.algorithm, current.hexdigest):
                    at_risk.append((f"{ref.path}/{path}", ref.algorithm))
                removes.append(f"{ref.path}/{path}")
    missing = sorted({(r.algorithm, name) for r, _, name, _ in writes
                      if not ctx.cache.has(r.algorithm, name)})
    if missing:
        raise DataError(f"{len(missing)} object(s) are not in the cache, e.g. "
                        f"{missing[0][0]}:{missing[0][1]}", path=str(ctx.cache.root),
                        hint="run `envbuild data pull` first; nothing was changed")
    if at_risk and not force:
        names = ", ".join(p for p, _ in at_risk[:10]) + (" ..." if len(at_risk) > 10 else "")
        raise DataError(f"checkout would overwrite or remove {len(at_risk)} modified file(s) "
                        f"whose content is not in the cache: {names}",
                        hint="`envbuild data add` them to keep them, or pass --force (their "
                             "bytes are stored in the cache first); nothing was changed")
    if link == "reflink" and writes:
        first_ref, first_path, first_name, _ = writes[0]
        ctx.cache.require_clone(first_ref.algorithm, first_name, ctx.project / first_path)
    for path, algorithm in at_risk:  # --force: keep the old bytes where they can be found again
        kept = ctx.cache.store_file(str(ctx.project / path), algorithm, display=path)
        # The cache skips fsync (see cache.py), but these objects are about to be the only
        # copy of the user's bytes: they reach the disk before the working file is replaced.
        _fsync(ctx.cache.path(algorithm, kept.hexdigest))
    written = []
    how: Counter[str] = Counter()
    total = sum(os.path.getsize(ctx.cache.find(r.algorithm, n) or os.devnull)
                for r, _, n, _ in writes)
    ctx.progress.start("checking out", total, len(writes))
    try:
        for ref, path, name, executable in writes:
            how[ctx.cache.materialize(ref.algorithm, name, ctx.project / path,
                                      executable=executable, link=link)] += 1
            written.append(path)
            found = ctx.cache.find(ref.algorithm, name)
            ctx.progress.advance(os.path.getsize(found) if found else 0, 1)
    finally:
        ctx.progress.finish()
    for path in removes:
        (ctx.project / path).unlink()
        _prune_empty_dirs(ctx.project, path)
    return CheckoutOutcome(written=tuple(written), removed=tuple(removes),
                           kept=tuple(p for p, _ in at_risk), unchanged=unchanged,
                           how=tuple(sorted(how.items())))


def _fsync(path: Path) -> None:
    """The file's bytes and its directory entry on disk."""
    for target, flags in ((path, os.O_RDONLY), (path.parent, os.O_RDONLY | os.O_DIRECTORY)):
        fd = os.open(target, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _prune_empty_dirs(project: Path, path: str) -> None:
    parent = (project / path).parent
    while parent != project and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


# ---- remotes --------------------------------------------------------------------------------------


def remote_url(project: Path, url: str | None) -> str:
    if url:
        return url
    spec = spec_data(project)
    if spec is not None and getattr(spec, "remote", None):
        return str(spec.remote)
    raise DataError("no remote", hint="pass --remote URL (file:///dir or s3://bucket/prefix) or "
                    "set `remote` under [data] in envbuild.toml")


@dataclass(frozen=True, kw_only=True, slots=True)
class TransferOutcome:
    sent: int  # objects pushed or pulled
    present: int  # objects already there
    bytes: int


def push(ctx: DataContext, url: str, paths: Sequence[str] = (), *,
         cwd: Path | None = None) -> TransferOutcome:
    from envbuild.data.remote import Remote

    table = read_table(ctx.project)
    wanted: dict[tuple[str, str], None] = {}
    for ref in _select(table, ctx.project, paths, cwd):
        listing = need_listing(ctx, ref) if ref.is_tree else None
        for obj in ref_objects(ctx, ref, listing):
            wanted[obj] = None
    missing = [o for o in wanted if not ctx.cache.has(*o)]
    if missing:
        raise DataError(f"{len(missing)} object(s) to push are not in the cache, e.g. "
                        f"{missing[0][0]}:{missing[0][1]}", path=str(ctx.cache.root),
                        hint="`envbuild data add` the data first (or pull it from where it is)")
    remote = Remote(url)
    present = set()
    for algorithm in sorted({a for a, _ in wanted}):
        present |= {(algorithm, n) for n in remote.existing(algorithm)}
    to_send = [o for o in wanted if o not in present]
    items = [(ctx.cache.verified(a, n), a, n) for a, n in to_send]  # never push a corrupt object
    size = sum(p.stat().st_size for p, _, _ in items)
    ctx.progress.start(f"pushing to {url}", size, len(items))
    try:
        for i in range(0, len(items), 256):
            batch = items[i:i + 256]
            remote.upload(batch)
            ctx.progress.advance(sum(p.stat().st_size for p, _, _ in batch), len(batch))
    finally:
        ctx.progress.finish()
    return TransferOutcome(sent=len(items), present=len(wanted) - len(items), bytes=size)


def pull(ctx: DataContext, url: str, paths: Sequence[str] = (), *,
         cwd: Path | None = None) -> TransferOutcome:
    """Fetch the objects of the refs into the cache; each is verified before it enters."""
    from envbuild.data.remote import Remote

    table = read_table(ctx.project)
    refs = _select(table, ctx.project, paths, cwd)
    remote = Remote(url)
    sent = size = 0

    def fetch(objects: Iterable[tuple[str, str]]) -> None:
        nonlocal sent, size
        todo = [o for o in dict.fromkeys(objects) if not ctx.cache.has(*o)]
        for i in range(0, len(todo), 256):
            batch = [(a, n, ctx.cache.temp_for_download()) for a, n in todo[i:i + 256]]
            try:
                try:
                    remote.download(batch)
                except OSError as exc:  # the cache's disk filled up (remote.download's errors)
                    raise ctx.cache.disk_full(exc) from None
                for a, n, tmp in batch:
                    got = tmp.stat().st_size
                    ctx.cache.adopt(tmp, a, n, what=f"remote object {remote.key(a, n)}")
                    sent += 1
                    size += got
                    ctx.progress.advance(got, 1)
            finally:
                for _, _, tmp in batch:
                    tmp.unlink(missing_ok=True)

    ctx.progress.start(f"pulling from {url}", 0, 0)
    try:
        fetch((r.algorithm, r.object_name) for r in refs if r.is_tree)
        objects: list[tuple[str, str]] = []
        for ref in refs:
            listing = need_listing(ctx, ref) if ref.is_tree else None
            objects += ref_objects(ctx, ref, listing)
        total = len(dict.fromkeys(objects))
        fetch(objects)
    finally:
        ctx.progress.finish()
    return TransferOutcome(sent=sent, present=total - sent if total >= sent else 0, bytes=size)


# ---- imports --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportOutcome:
    refs: tuple[DataRef, ...]
    sources: tuple[str, ...]
    bundle: str


def _find_files(project: Path, names: Iterable[str], suffix: str,
                ignore: Ignore | None = None) -> list[str]:
    out = []
    for directory, dirs, files in os.walk(project):
        rel_dir = Path(os.path.relpath(directory, project)).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        dirs[:] = sorted(d for d in dirs if d not in (".git", ".dvc", ".envbuild", ".venv",
                                                      "node_modules")
                         and not (ignore and ignore(prefix + d, True)))
        for name in files:
            if (name in names or (suffix and name.endswith(suffix))) and not (
                    ignore and ignore(prefix + name, False)):
                out.append(prefix + name)
    return sorted(out)


def _commit_refs(ctx: DataContext, lock: Any, table: DataTable, refs: list[DataRef],
                 sources: list[str]) -> ImportOutcome:
    try:
        updated = table.with_refs(refs)
    except ValueError as exc:
        raise DataError(f"the imported refs overlap: {exc}", hint="import fewer files") from None
    saved = save_table(ctx.project, lock, updated) if updated != table else lock
    return ImportOutcome(refs=tuple(refs), sources=tuple(sources), bundle=saved.bundle_id)


def import_dvc(ctx: DataContext, paths: Sequence[str] = (), *,
               cwd: Path | None = None) -> ImportOutcome:
    """Refs from `.dvc` files and `dvc.lock` outs (every one in the project when none is named)."""
    from envbuild.data.imports import refs_from_dvc_file, refs_from_dvc_lock

    lock, table = load_table(ctx.project)
    sources = ([project_path(ctx.project, p, cwd=cwd) for p in paths] if paths
               else _find_files(ctx.project, ("dvc.lock",), ".dvc", ctx.ignore("md5")))
    if not sources:
        raise DataError("no .dvc files and no dvc.lock in the project", path=str(ctx.project),
                        hint="name them: `envbuild data import-dvc data.dvc`")
    refs: list[DataRef] = []
    for source in sources:
        try:
            text = (ctx.project / source).read_text(encoding="utf-8")
        except OSError as exc:
            raise DataError(f"cannot read: {exc.strerror}", path=source, hint="") from None
        parse = refs_from_dvc_lock if posixpath_name(source) == "dvc.lock" else refs_from_dvc_file
        refs += parse(text, origin=source)
    return _commit_refs(ctx, lock, table, refs, sources)


def import_lfs(ctx: DataContext, paths: Sequence[str] = (), *,
               cwd: Path | None = None) -> ImportOutcome:
    """Refs from Git LFS pointer files (the named ones, or every pointer in the project).

    A named file that holds real content (already smudged) is hashed: its sha256 is its LFS oid.
    """
    lock, table = load_table(ctx.project)
    candidates = ([project_path(ctx.project, p, cwd=cwd) for p in paths] if paths
                  else _find_files(ctx.project, (), ""))
    refs: list[DataRef] = []
    for rel in candidates:
        full = ctx.project / rel
        if full.is_dir():
            raise DataError("is a directory; name the pointer files", path=rel, hint="")
        try:
            head = full.read_bytes() if full.stat().st_size <= LFS_MAX_POINTER else b""
        except OSError as exc:
            raise DataError(f"cannot read: {exc.strerror}", path=rel, hint="") from None
        parsed = parse_lfs_pointer(head)
        if parsed is not None:
            refs.append(DataRef(path=rel, kind="file", digest="sha256:" + parsed[0],
                                size=parsed[1], files=1, source="git-lfs", origin=rel))
        elif paths:
            found = scan(ctx, rel, "sha256", store=True)
            refs.append(DataRef(path=rel, kind="file", digest=found.digest, size=found.size,
                                files=1, source="git-lfs", origin=rel))
    if not refs:
        raise DataError("no Git LFS pointer files found", path=str(ctx.project),
                        hint="name the files: `envbuild data import-lfs models/big.bin`")
    ctx.stat.save()
    return _commit_refs(ctx, lock, table, refs, [r.path for r in refs])


def import_delta(ctx: DataContext, paths: Sequence[str], *, version: int | None = None,
                 cwd: Path | None = None, link: str = "auto") -> ImportOutcome:
    """Pin Delta Lake tables at a version (default: the newest), their files stored as by add.

    The ref holds what a reader of that version needs (the commits from 0, or the newest
    checkpoint and the commits after it) and the data files active at it
    (envbuild/data/delta.py); the table's other files are not part of it.
    """
    from envbuild.data.delta import LOG_DIR, DeltaError

    if not paths:
        raise DataError("name the table directories", hint="envbuild data import-delta "
                        "data/events [--version N]")
    if version is not None and len(paths) > 1:
        raise DataError("--version applies to one table; import the others one by one",
                        hint="envbuild data import-delta TABLE --version N")
    lock, table = load_table(ctx.project)
    refs: list[DataRef] = []
    for rel in dict.fromkeys(project_path(ctx.project, p, cwd=cwd) for p in paths):
        try:
            pinned, files = delta_files(ctx.project / rel, version)
        except DeltaError as exc:
            raise DataError(f"cannot read the Delta table: {exc}", path=rel,
                            hint="envbuild reads Delta Lake tables from their _delta_log "
                                 "(JSON commits and classic parquet checkpoints)") from None
        except FileNotFoundError:
            raise DataError(f"not a Delta table (no {LOG_DIR}/ here)", path=rel,
                            hint="name the table's directory, the one holding _delta_log/; "
                                 "`envbuild data add` pins any other directory") from None
        except OSError as exc:
            raise DataError(f"cannot read {LOG_DIR}/: {exc.strerror}", path=rel,
                            hint="") from None
        found = _store(ctx, table, rel, link=link, label="importing", select=frozenset(files),
                       again="import {} instead, or remove that ref")
        refs.append(DataRef(path=rel, kind="table", digest=found.digest, size=found.size,
                            files=found.files, source="delta", origin=f"{rel}/{LOG_DIR}",
                            version=pinned))
    ctx.stat.save()
    return _commit_refs(ctx, lock, table, refs, [r.origin or r.path for r in refs])
