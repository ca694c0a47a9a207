"""The stat cache: an unchanged file (same size, mtime, inode, mode) is never read again.

Lives in the project at `.envbuild/stat-cache.json` (the directory carries its own `.gitignore`),
outside the lock: it only saves work. A missing, corrupt or concurrently overwritten stat cache
costs a re-hash, never a wrong answer:
- entries are keyed by the project path and hold `[size, mtime_ns, inode, mode, sha256, md5]`;
- a file modified in the same clock tick as it was hashed would keep its mtime, so an entry is
  only kept when the file's mtime is older than RACY_NS before the hash started (git's "racily
  clean" rule); such a file is simply hashed again next time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from envbuild.data.hashing import FileHash, FileStat

STATE_DIR = ".envbuild"
STAT_CACHE = f"{STATE_DIR}/stat-cache.json"
VERSION = 1
RACY_NS = 2_000_000_000
_SLOT = {"sha256": 4, "md5": 5}


def state_dir(project: Path) -> Path:
    """The project's `.envbuild/`, created with a `.gitignore` that ignores all of it."""
    directory = project / STATE_DIR
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# envbuild's local state (stat cache): never commit it\n*\n")
    return directory


class StatCache:
    def __init__(self, project: Path, entries: dict[str, list[Any]] | None = None) -> None:
        self.project = project
        self.entries: dict[str, list[Any]] = entries or {}
        self.dirty = False

    @classmethod
    def load(cls, project: Path) -> StatCache:
        try:
            data = json.loads((project / STAT_CACHE).read_bytes())
            if data.get("version") == VERSION and isinstance(data.get("entries"), dict):
                return cls(project, data["entries"])
        except (OSError, ValueError, AttributeError):
            pass  # missing or corrupt: start empty, re-hash
        return cls(project)

    def lookup(self, path: str, algorithm: str, st: FileStat) -> str | None:
        e = self.entries.get(path)
        if (e is None or len(e) != 6 or e[0] != st.size or e[1] != st.mtime_ns or e[2] != st.ino
                or e[3] != st.mode):
            return None
        value = e[_SLOT[algorithm]]
        return value if isinstance(value, str) else None

    def record(self, path: str, algorithm: str, fh: FileHash, started_ns: int) -> None:
        st = fh.stat
        old = self.entries.get(path)
        if st.mtime_ns >= started_ns - RACY_NS:
            if old is not None:
                del self.entries[path]
                self.dirty = True
            return
        same = (old is not None and len(old) == 6
                and old[:4] == [st.size, st.mtime_ns, st.ino, st.mode])
        entry = list(old) if same and old is not None else [st.size, st.mtime_ns, st.ino, st.mode,
                                                            None, None]
        entry[_SLOT[algorithm]] = fh.hexdigest
        if entry != old:
            self.entries[path] = entry
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        from envbuild.files import write_atomic

        state_dir(self.project)
        data = json.dumps({"version": VERSION, "entries": self.entries}, sort_keys=True,
                          separators=(",", ":"))
        try:
            write_atomic(self.project / STAT_CACHE, data.encode() + b"\n")
        except OSError:
            pass  # a stat cache that cannot be written costs a re-hash next time, nothing more
        self.dirty = False


def now_ns() -> int:
    return time.time_ns()
