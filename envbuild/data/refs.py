"""The `[data]` table of envbuild.lock as typed refs. Pure.

In envbuild.lock (keys sorted, so the table is canonical and enters the bundle id):

    [data.refs."data/train.csv"]
    digest = "sha256:..."      # a file's sha256; a directory's tree digest (envbuild/data/tree.py)
    files = 1
    kind = "file"              # or "dir", or "table" (a Delta Lake table version)
    size = 123                 # bytes, all files together
    source = "envbuild"        # "envbuild" (data add), "dvc" (import-dvc), "git-lfs" (import-lfs),
                               # "delta" (import-delta)
    origin = "train.csv.dvc"   # imported refs only: the file the ref was read from
    version = 3                # tables only: the table version pinned

A table ref is a directory ref over only some of its files: what a reader of that version
needs from the table's `_delta_log/` (the commits from 0, or a checkpoint and the commits after
it) and the data files active at it (envbuild/data/delta.py); its digest is the tree digest of
their listing. Other files in the directory are not part of it.

Refs imported from DVC keep DVC's md5 (`digest = "md5:..."`) and are checked by md5; a later
`envbuild data add` of the same path re-hashes it to sha256.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from envbuild.data.tree import check_relpath, is_hex

KINDS = ("file", "dir", "table")
SOURCES = ("envbuild", "dvc", "git-lfs", "delta")


@dataclass(frozen=True, kw_only=True, slots=True)
class DataRef:
    path: str  # relative to the project, POSIX
    kind: str
    digest: str  # "<algorithm>:<hex>"
    size: int
    files: int
    source: str = "envbuild"
    origin: str | None = None
    version: int | None = None  # a table's version; None for files and directories

    def __post_init__(self) -> None:
        check_relpath(self.path)
        algorithm, _, hexdigest = self.digest.partition(":")
        if self.kind not in KINDS or self.source not in SOURCES or not is_hex(algorithm, hexdigest):
            raise ValueError(f"bad data ref for {self.path!r}")
        if (self.kind == "table") != (self.version is not None) or (
                self.version is not None and self.version < 0):
            raise ValueError(f"bad data ref for {self.path!r}: a version goes with a table")

    @property
    def is_tree(self) -> bool:
        """A directory or a table: its digest is that of a listing, kept as an object."""
        return self.kind != "file"

    @property
    def algorithm(self) -> str:
        return self.digest.partition(":")[0]

    @property
    def hexdigest(self) -> str:
        return self.digest.partition(":")[2]

    @property
    def object_name(self) -> str:
        """The cache / remote object holding the file, or the directory's listing.

        DVC names its directory listings `<md5>.dir`; envbuild keeps that name so a DVC cache
        can be read as it is.
        """
        if self.kind == "dir" and self.algorithm == "md5":
            return self.hexdigest + ".dir"
        return self.hexdigest

    def covers(self, path: str) -> bool:
        return path == self.path or (self.is_tree and path.startswith(self.path + "/"))

    @classmethod
    def from_dict(cls, path: str, d: Mapping[str, Any]) -> DataRef:
        return cls(path=path, kind=d["kind"], digest=d["digest"], size=int(d["size"]),
                   files=int(d["files"]), source=d.get("source", "envbuild"),
                   origin=d.get("origin"),
                   version=int(d["version"]) if "version" in d else None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "digest": self.digest, "size": self.size,
                               "files": self.files, "source": self.source}
        if self.origin is not None:
            out["origin"] = self.origin
        if self.version is not None:
            out["version"] = self.version
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class DataTable:
    refs: tuple[DataRef, ...] = ()  # sorted by path, no ref inside another

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.refs, key=lambda r: r.path))
        object.__setattr__(self, "refs", ordered)
        for ref in ordered:
            inner = next((o for o in ordered if o is not ref and ref.covers(o.path)), None)
            if inner is not None:
                raise ValueError(f"data ref {inner.path!r} lies inside {ref.path!r}")

    def get(self, path: str) -> DataRef | None:
        return next((r for r in self.refs if r.path == path), None)

    def covering(self, path: str) -> DataRef | None:
        return next((r for r in self.refs if r.covers(path)), None)

    def with_refs(self, new: Iterable[DataRef]) -> DataTable:
        """These refs added or replaced; refs inside a new directory ref are dropped."""
        new = list(new)
        keep = [r for r in self.refs
                if not any(n.covers(r.path) or n.path == r.path for n in new)]
        return DataTable(refs=tuple(keep + new))

    def select(self, paths: Iterable[str]) -> tuple[DataRef, ...]:
        """The refs named by `paths` (a ref's path or a path inside it); all refs when empty."""
        wanted = list(paths)
        if not wanted:
            return self.refs
        out: list[DataRef] = []
        for path in wanted:
            ref = self.get(path) or self.covering(path)
            found = [ref] if ref else [r for r in self.refs if r.path.startswith(path + "/")]
            if not found:
                raise KeyError(path)
            out += [r for r in found if r not in out]
        return tuple(sorted(out, key=lambda r: r.path))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataTable:
        refs = d.get("refs", {})
        return cls(refs=tuple(DataRef.from_dict(p, v) for p, v in refs.items()))

    def to_dict(self) -> dict[str, Any]:
        if not self.refs:
            return {}
        return {"refs": {r.path: r.to_dict() for r in self.refs}}
