"""Delta Lake table versions: the files that make up version N of a table. Pure.

A Delta table is a directory of data files plus `_delta_log/`, one commit per version
(`_delta_log/00000000000000000042.json`, one JSON action per line). Version N is what replaying
commits 0..N gives: an `add` action brings a data file in, a `remove` takes it out. To pin the
exact bytes a reader of version N sees (`DeltaTable(path, version=N)`), a table ref pins those
data files and the commits 0..N themselves (a reader finds the files through the log), and
nothing else in the directory: later versions may add and vacuum files without touching it.

Not supported yet, each refused with the reason: a log whose first commits were cleaned up (a
reader would start from a parquet checkpoint, which this module does not read), data files
outside the table directory (absolute URIs, as shallow clones have), and deletion vectors kept
in files of their own (inline ones are in the log, so they are pinned with it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from urllib.parse import unquote

from envbuild.data.tree import check_relpath

LOG_DIR = "_delta_log"
_COMMIT = re.compile(r"^(\d{20})\.json$")


class DeltaError(ValueError):
    """The log cannot be read as a Delta table version (the message says why)."""


def commit_name(version: int) -> str:
    """The commit file of `version`, relative to the table directory."""
    return f"{LOG_DIR}/{version:020d}.json"


def latest_version(log_names: Iterable[str]) -> int:
    """The newest version whose commits 0..N are all in the log directory (file names)."""
    versions = sorted(int(m[1]) for name in log_names if (m := _COMMIT.match(name)))
    if not versions:
        raise DeltaError(f"no commits in {LOG_DIR}/: not a Delta table")
    if versions[0] != 0:
        raise DeltaError(f"the log starts at version {versions[0]}: older commits were cleaned "
                         "up and only a checkpoint holds them (reading checkpoints is not "
                         "supported yet)")
    latest = 0
    for version in versions[1:]:
        if version != latest + 1:
            break
        latest = version
    return latest


def table_files(read_commit: Callable[[int], bytes], version: int) -> list[str]:
    """Every file of the table at `version`, relative to the table directory, sorted: the
    commits 0..version and the data files active after them. `read_commit(v)` gives the bytes
    of commit v (and raises DeltaError, or OSError, when it cannot)."""
    if version < 0:
        raise DeltaError(f"version {version} does not exist")
    active: dict[str, None] = {}
    for v in range(version + 1):
        for lineno, line in enumerate(read_commit(v).splitlines(), 1):
            if not line.strip():
                continue
            try:
                action = json.loads(line)
            except ValueError:
                raise DeltaError(f"{commit_name(v)} line {lineno}: not JSON") from None
            if not isinstance(action, dict):
                raise DeltaError(f"{commit_name(v)} line {lineno}: not an action")
            if "add" in action:
                active[_data_path(action["add"], v)] = None
            elif "remove" in action:
                active.pop(_data_path(action["remove"], v), None)
    return sorted([commit_name(v) for v in range(version + 1)] + list(active))


def _data_path(action: object, version: int) -> str:
    where = commit_name(version)
    if not isinstance(action, dict) or not isinstance(action.get("path"), str):
        raise DeltaError(f"{where}: a file action without a path")
    raw = action["path"]
    path = unquote(raw)  # the log keeps paths URL-encoded (partition values: "p=a%20b/...")
    if "://" in raw or path.startswith("/"):
        raise DeltaError(f"{where}: data file {raw!r} lies outside the table directory "
                         "(absolute paths are not supported yet)")
    vector = action.get("deletionVector")
    if isinstance(vector, dict) and vector.get("storageType") != "i":
        raise DeltaError(f"{where}: {path} has a deletion vector in a file of its own "
                         "(not supported yet; inline ones are)")
    try:
        check_relpath(path)
    except ValueError:
        raise DeltaError(f"{where}: bad data file path {raw!r}") from None
    if path == LOG_DIR or path.startswith(LOG_DIR + "/"):
        raise DeltaError(f"{where}: data file {raw!r} lies inside {LOG_DIR}/")
    return path
