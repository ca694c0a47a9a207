"""`data status` when nothing changed, with as little as possible besides the walk itself.

A no-change status of 20,000 files should cost about what a bare `os.walk` + `os.lstat` loop
costs. So this path imports no TOML parser, no dataclasses and no hashing: it takes the lock's
[data] table from the stat cache (valid while envbuild.lock keeps its size, mtime and inode),
and walks each ref comparing every file's stat with the recorded one as it goes
(walk.unchanged), stopping at the first difference. Anything it cannot answer that way (a
changed or new file, a ref never scanned, a path inside a ref, a ref from DVC, an unreadable
stat cache) returns None, and the full `service.check` runs instead: this is only a shortcut to
the same answer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from envbuild.data.errors import DataError
from envbuild.data.statcache import StatCache, lock_sig
from envbuild.data.walk import project_path

LOCK_FILE = "envbuild.lock"  # envbuild.lock.bundle.LOCK_FILE (not imported: it needs dataclasses)


def state_row(*, path: str, state: str, expected: str, actual: str | None, kind: str,
              source: str, changes: Sequence[tuple[str, str]] = (), note: str = "",
              ) -> dict[str, Any]:
    """One ref in `data status --json` / `data verify --json`."""
    return {"path": path, "state": state, "expected": expected, "actual": actual, "kind": kind,
            "source": source, "changes": [{"path": p, "change": c} for p, c in changes],
            "note": note}


def unchanged(project: Path, paths: Sequence[str] = (), *,
              cwd: Path | None = None) -> list[dict[str, Any]] | None:
    """The rows of a status in which every selected ref is unchanged; None when not known so."""
    project = project.absolute()
    cache = StatCache.load(project)
    try:
        table = cache.lock_table(lock_sig(os.stat(project / LOCK_FILE)))
    except OSError:
        return None
    if table is None:
        return None
    refs: dict[str, dict[str, Any]] = table.get("refs", {})
    try:
        selected = [project_path(project, p, cwd=cwd) for p in paths] or sorted(refs)
    except DataError:
        return None
    rows = []
    for path in dict.fromkeys(selected):
        ref = refs.get(path)
        if ref is None:
            return None
        digest = ref["digest"]
        if not digest.startswith("sha256:"):
            return None  # a ref from DVC: its walk also depends on .dvcignore files (dvcignore.py)
        if cache.unchanged(project, path, ref["kind"], digest.partition(":")[0]) != digest:
            return None
        rows.append(state_row(path=path, state="ok", expected=digest, actual=digest,
                              kind=ref["kind"], source=ref.get("source", "envbuild")))
    return sorted(rows, key=lambda r: r["path"])
