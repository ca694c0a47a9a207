"""Delta Lake table versions: the files that make up version N of a table. Pure.

A Delta table is a directory of data files plus `_delta_log/`, one commit per version
(`_delta_log/00000000000000000042.json`, one JSON action per line). Version N is what replaying
commits 0..N gives: an `add` action brings a data file in, a `remove` takes it out. To pin the
exact bytes a reader of version N sees (`DeltaTable(path, version=N)`), a table ref pins those
data files and the commits 0..N themselves (a reader finds the files through the log), and
nothing else in the directory: later versions may add and vacuum files without touching it.

Where the first commits were cleaned up (Spark and delta-rs do so after a checkpoint), a
reader starts from the newest parquet checkpoint at or below N (`<C>.checkpoint.parquet`, or
its parts `<C>.checkpoint.<i>.<n>.parquet`): its `add` rows are the files active at C. Then the
checkpoint's files and commits C+1..N are pinned instead. With all commits from 0 present the
commits alone are replayed, as they say everything.

Not supported yet, each refused with the reason: v2 checkpoints (named by a UUID, with sidecar
files), data files outside the table directory (absolute URIs, as shallow clones have), and
deletion vectors kept in files of their own (inline ones are in the log, so they are pinned
with it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from envbuild.data.tree import check_relpath

LOG_DIR = "_delta_log"
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?\.parquet$")
_V2_CHECKPOINT = re.compile(r"^\d{20}\.checkpoint\.[0-9a-f-]{36}\.(?:parquet|json)$")


class DeltaError(ValueError):
    """The log cannot be read as a Delta table version (the message says why)."""


def commit_name(version: int) -> str:
    """The commit file of `version`, relative to the table directory."""
    return f"{LOG_DIR}/{version:020d}.json"


def checkpoints(log_names: Iterable[str]) -> dict[int, list[str]]:
    """Version -> the file names of its checkpoint, for every complete classic checkpoint."""
    parts: dict[int, dict[int, str]] = {}
    counts: dict[int, int] = {}
    for name in log_names:
        m = _CHECKPOINT.match(name)
        if m is None:
            continue
        version = int(m[1])
        part, count = (int(m[2]), int(m[3])) if m[2] else (1, 1)
        parts.setdefault(version, {})[part] = name
        counts[version] = count
    return {v: [found[i] for i in sorted(found)] for v, found in parts.items()
            if sorted(found) == list(range(1, counts[v] + 1))}


@dataclass(frozen=True, slots=True)
class Plan:
    """How to read version `version`: from checkpoint `start` (None: from commit 0), then
    replaying `commits`."""

    version: int
    start: int | None
    checkpoint: tuple[str, ...]  # its file names in the log directory
    commits: tuple[int, ...]


def plan(log_names: Iterable[str], version: int | None = None) -> Plan:
    """How to read `version` (default: the newest reachable) from what the log holds."""
    names = list(log_names)
    commits = {int(m[1]) for name in names if (m := _COMMIT.match(name))}
    marks = checkpoints(names)
    if not commits and not marks:
        if any(_V2_CHECKPOINT.match(n) for n in names):
            raise DeltaError("the log holds only a v2 checkpoint (not supported yet)")
        raise DeltaError(f"no commits in {LOG_DIR}/: not a Delta table")

    def reach(start: int | None) -> int:  # the newest version replayable from `start`
        latest = -1 if start is None else start
        while latest + 1 in commits:
            latest += 1
        return latest

    starts: list[int | None] = ([None] if 0 in commits else []) + sorted(marks, reverse=True)
    newest = max((reach(s) for s in starts), default=-1)
    if newest < 0:
        raise DeltaError(f"the log starts at version {min(commits)}, with no checkpoint to "
                         "start from (v2 checkpoints are not supported yet)")
    wanted = newest if version is None else version
    if wanted > newest:
        raise DeltaError(f"version {wanted} does not exist (the newest is {newest})")
    if wanted < 0:
        raise DeltaError(f"version {wanted} does not exist")
    for start in starts:  # commits from 0 first, then the newest checkpoint that reaches it
        if (start is None or start <= wanted) and reach(start) >= wanted:
            first = 0 if start is None else start + 1
            return Plan(version=wanted, start=start,
                        checkpoint=tuple(marks[start]) if start is not None else (),
                        commits=tuple(range(first, wanted + 1)))
    raise DeltaError(f"version {wanted} cannot be read: its commits were cleaned up and no "
                     "checkpoint at or below it is left")


def table_files(read_commit: Callable[[int], bytes], how: Plan,
                read_checkpoint: Callable[[tuple[str, ...]], Iterable[object]] | None = None,
                ) -> list[str]:
    """Every file of the table at `how.version`, relative to the table directory, sorted:
    what the reader starts from (the commits from 0, or a checkpoint's files) and the data
    files active after replaying. `read_commit(v)` gives the bytes of commit v;
    `read_checkpoint` the `add` actions of a checkpoint's files (both raise DeltaError or
    OSError when they cannot)."""
    active: dict[str, None] = {}
    if how.start is not None:
        if read_checkpoint is None:
            raise DeltaError("reading a checkpoint needs a reader")
        for action in read_checkpoint(how.checkpoint):
            active[_data_path(action, how.start, checkpoint=True)] = None
    for v in how.commits:
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
    start = [f"{LOG_DIR}/{name}" for name in how.checkpoint]
    return sorted(start + [commit_name(v) for v in how.commits] + list(active))


def _data_path(action: object, version: int, *, checkpoint: bool = False) -> str:
    where = f"the checkpoint of version {version}" if checkpoint else commit_name(version)
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
