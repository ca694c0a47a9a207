"""The stat cache: an unchanged file (same size, mtime, inode, mode) is never read again.

Lives in the project at `.envbuild/stat-cache` (the directory carries its own `.gitignore`),
outside the lock: it only saves work. A missing, corrupt, foreign or concurrently overwritten
stat cache costs a re-hash, never a wrong answer:
- one record per walked root (a ref's path): its walk as it was (each file's relative path,
  size, mtime, inode and mode, in directory order), the digest of every file by algorithm, and
  the root's digest. When a new walk equals the recorded one, the recorded digest is the answer
  (a no-change `data status` checks that as it walks, walk.unchanged, without building the walk);
- when they differ, files are looked up one by one by relative path and full stat;
- a file modified in the same clock tick as it was hashed would keep its mtime, so a digest is
  only kept when the file's mtime is older than RACY_NS before the hash started (git's "racily
  clean" rule); such a file is simply hashed again next time, and its root's digest is not kept;
- the lock's [data] table is kept too, keyed by the lock file's size, mtime and inode (same racy
  rule), so a no-change status does not parse envbuild.lock (nor import a TOML parser).

Format: a header line naming this format and the envbuild, Python and marshal versions, the
CRC-32 of the rest, then `marshal` data (the fastest loader in the standard library; it must only
read what this Python wrote, and the checksum keeps a torn or damaged file from reaching it). It
is written to a temp file and renamed, without fsync: after a crash it is at worst stale or
torn, and then ignored.
"""

from __future__ import annotations

import marshal
import os
import sys
import time
import zlib
from array import array
from pathlib import Path
from typing import Any

from envbuild import __version__
from envbuild.data.walk import Entry
from envbuild.data.walk import unchanged as walk_unchanged

STATE_DIR = ".envbuild"
STAT_CACHE = f"{STATE_DIR}/stat-cache"
_OLD_STAT_CACHE = f"{STATE_DIR}/stat-cache.json"  # format 1, replaced by this one
# A stat cache another envbuild or Python wrote is ignored, not read: its lock table was checked
# by that envbuild's lock reader, and marshal's format belongs to the Python that wrote it.
HEADER = (f"envbuild-stat-cache-v2 envbuild{__version__} python{sys.version_info[0]}."
          f"{sys.version_info[1]} marshal{marshal.version}\n").encode()
RACY_NS = 2_000_000_000
ALGORITHMS = ("sha256", "md5")

# One root: (kind, the walk's relative paths, its numbers (size, mtime_ns, inode, mode per entry,
# as array("q") bytes), {algorithm: every entry's hex digest joined into one string, "-"s where
# not known}, {algorithm: the root's digest}). Columns and joined strings, not a list of tuples:
# they load several times faster, and walk.unchanged compares against them as it goes.
Record = tuple[str, list[str], bytes, dict[str, str], dict[str, str]]
LockSig = tuple[int, int, int]  # envbuild.lock's size, mtime_ns, inode
_WIDTH = {"sha256": 64, "md5": 32}


def state_dir(project: Path) -> Path:
    """The project's `.envbuild/`, created with a `.gitignore` that ignores all of it."""
    directory = project / STATE_DIR
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# envbuild's local state (stat cache): never commit it\n*\n")
    return directory


def lock_sig(st: os.stat_result) -> LockSig:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _numbers(data: bytes) -> array[int]:
    numbers = array("q")
    numbers.frombytes(data)
    return numbers


def _entries(record: Record) -> list[Entry]:
    n = _numbers(record[2]).tolist()
    return list(zip(record[1], n[0::4], n[1::4], n[2::4], n[3::4]))


def _join(algorithm: str, values: list[str | None]) -> str:
    unknown = "-" * _WIDTH[algorithm]
    return "".join(v or unknown for v in values)


def _split(algorithm: str, joined: str) -> list[str | None]:
    w = _WIDTH[algorithm]
    return [None if joined[i] == "-" else joined[i:i + w] for i in range(0, len(joined), w)]


def _decode(data: bytes) -> dict[str, Any] | None:
    if not data.startswith(HEADER):
        return None
    crc, body = data[len(HEADER):len(HEADER) + 8], memoryview(data)[len(HEADER) + 9:]
    try:
        if int(crc, 16) != zlib.crc32(body):
            return None
        payload = marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return None
    return payload if isinstance(payload, dict) else None


class StatCache:
    def __init__(self, project: Path, payload: dict[str, Any] | None = None) -> None:
        self.project = project
        payload = payload or {}
        roots = payload.get("roots")
        self.roots: dict[str, Record] = roots if isinstance(roots, dict) else {}
        lock = payload.get("lock")
        self.lock: tuple[LockSig, dict[str, Any]] | None = lock if isinstance(lock, tuple) else None
        self.dirty = False

    @classmethod
    def load(cls, project: Path) -> StatCache:
        try:
            with open(project / STAT_CACHE, "rb") as f:
                return cls(project, _decode(f.read()))
        except OSError:
            return cls(project)  # none yet: start empty, hash

    # ---- files and roots -----------------------------------------------------------------------

    def unchanged(self, project: Path, root: str, kind: str, algorithm: str) -> str | None:
        """The root's recorded digest if a walk of it now would equal the recorded walk."""
        record = self.roots.get(root)
        if record is None or record[0] != kind or algorithm not in record[4]:
            return None
        if not walk_unchanged(project, root, record[0], record[1], _numbers(record[2])):
            return None
        return record[4][algorithm]

    def root(self, root: str, kind: str, entries: list[Entry], algorithm: str,
             ) -> tuple[str, list[str]] | None:
        """(the root's digest, each file's) as recorded, when `entries` (a walk of it) equal
        the recorded walk; else None."""
        record = self.roots.get(root)
        if record is None or record[0] != kind or algorithm not in record[4]:
            return None
        if _entries(record) != entries:
            return None
        return record[4][algorithm], _split(algorithm, record[3][algorithm])  # type: ignore[return-value]

    def files(self, root: str) -> dict[str, tuple[Entry, dict[str, str | None]]]:
        """Relative path -> (its recorded entry, {algorithm: hex}) for per-file lookups."""
        record = self.roots.get(root)
        if record is None:
            return {}
        digests = {a: _split(a, joined) for a, joined in record[3].items()}
        return {e[0]: (e, {a: d[i] for a, d in digests.items()})
                for i, e in enumerate(_entries(record))}

    def record(self, root: str, kind: str, entries: list[Entry], algorithm: str,
               hexdigests: list[str], digest: str, started_ns: int) -> None:
        """Remember a root's walk and the digests found for it (racy files left out).

        Digests of the other algorithm are kept for the entries whose stat did not change.
        """
        racy_after = started_ns - RACY_NS
        fresh = [None if e[2] >= racy_after else h for e, h in zip(entries, hexdigests)]
        digests = {algorithm: _join(algorithm, fresh)}
        trees = {algorithm: digest} if None not in fresh else {}
        old = self.roots.get(root)
        if old is not None and old[0] == kind:
            index = self.files(root)
            for other in ALGORITHMS:
                if other == algorithm or other not in old[3]:
                    continue
                values = []
                for e in entries:
                    known = index.get(e[0])
                    values.append(known[1].get(other) if known and known[0] == e else None)
                if any(v is not None for v in values):
                    digests[other] = _join(other, values)
                if other in old[4] and digests.get(other) == old[3][other] and None not in values:
                    trees[other] = old[4][other]
        numbers = array("q", [n for e in entries for n in e[1:]]).tobytes()
        new: Record = (kind, [e[0] for e in entries], numbers, digests, trees)
        if new != old:
            self.roots[root] = new
            self.dirty = True

    # ---- the lock's [data] table ---------------------------------------------------------------

    def lock_table(self, sig: LockSig) -> dict[str, Any] | None:
        if self.lock is None or self.lock[0] != sig:
            return None
        return self.lock[1]

    def remember_lock(self, sig: LockSig, table: dict[str, Any], started_ns: int) -> None:
        if sig[1] >= started_ns - RACY_NS or self.lock == (sig, table):
            return
        self.lock = (sig, table)
        self.dirty = True

    # ---- writing -------------------------------------------------------------------------------

    def save(self) -> None:
        if not self.dirty:
            return
        base = str(self.project)
        roots = {r: v for r, v in self.roots.items() if os.path.lexists(os.path.join(base, r))}
        body = marshal.dumps({"roots": roots, "lock": self.lock})
        data = HEADER + b"%08x\n" % zlib.crc32(body) + body
        try:
            state_dir(self.project)
            target = self.project / STAT_CACHE
            tmp = target.with_name(f".stat-cache.{os.getpid()}-{os.urandom(4).hex()}")
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            (self.project / _OLD_STAT_CACHE).unlink(missing_ok=True)
        except OSError:
            pass  # a stat cache that cannot be written costs a re-hash next time, nothing more
        self.dirty = False


def now_ns() -> int:
    return time.time_ns()
