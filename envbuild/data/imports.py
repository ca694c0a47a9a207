"""Reading refs that DVC and Git LFS already recorded. Pure: text in, refs out.

- DVC 3 `.dvc` files and `dvc.lock` stage outs record `md5` (with `hash: md5`); a directory's md5
  ends in `.dir` and is DVC's tree digest (envbuild/data/tree.py). They become refs checked by
  md5, so nothing is re-hashed on import. DVC 2 outs (no `hash: md5`: an md5 of text files with
  CRLF turned into LF) are refused with a hint.
- A Git LFS pointer (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md) records
  `oid sha256:<hex>` and `size`: exactly envbuild's file digest, so it becomes a ref as it is.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from envbuild.data.errors import DataError
from envbuild.data.refs import DataRef
from envbuild.data.tree import check_relpath

LFS_VERSION = b"version https://git-lfs.github.com/spec/v1\n"
LFS_MAX_POINTER = 1024
_LFS = re.compile(rb"^version https://git-lfs\.github\.com/spec/v1\n"
                  rb"(?:[a-z0-9.-]+ [^\n]*\n)*$")
_MD5 = re.compile(r"^[0-9a-f]{32}(\.dir)?$")


def parse_lfs_pointer(data: bytes) -> tuple[str, int] | None:
    """(sha256 hex, size) of a Git LFS pointer file's bytes, or None if it is not one."""
    if len(data) > LFS_MAX_POINTER or not data.startswith(LFS_VERSION) or not _LFS.match(data):
        return None
    fields = dict(line.split(" ", 1) for line in data.decode().splitlines()[1:])
    oid, size = fields.get("oid", ""), fields.get("size", "")
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", oid) or not size.isdigit():
        return None
    return oid.removeprefix("sha256:"), int(size)


def lfs_ref(path: str, data: bytes, *, origin: str | None = None) -> DataRef | None:
    parsed = parse_lfs_pointer(data)
    if parsed is None:
        return None
    return DataRef(path=path, kind="file", digest="sha256:" + parsed[0], size=parsed[1], files=1,
                   source="git-lfs", origin=origin)


def _out_ref(out: Any, origin: str, where: str) -> DataRef:
    if not isinstance(out, dict) or not isinstance(out.get("path"), str):
        raise DataError(f"{where}: an out without a path", path=origin, hint="")
    rel = out["path"]
    base = posixpath.dirname(origin)
    path = posixpath.normpath(posixpath.join(base, rel))
    try:
        check_relpath(path)
    except ValueError:
        raise DataError(f"{where}: {rel!r} lies outside the project", path=origin,
                        hint="envbuild refs live inside the project") from None
    md5 = str(out.get("md5", ""))
    if out.get("hash") != "md5":
        raise DataError(f"{where} ({rel}): a DVC 2 hash (md5 of text with CRLF as LF) that envbuild "
                        "does not check", path=origin,
                        hint=f"run `dvc cache migrate --dvc-files` or `envbuild data add {path}`")
    if not _MD5.match(md5):
        raise DataError(f"{where} ({rel}): no md5 recorded (not added yet?)", path=origin,
                        hint="run `dvc add` / `dvc repro` first, or `envbuild data add PATH`")
    is_dir = md5.endswith(".dir")
    return DataRef(path=path, kind="dir" if is_dir else "file", digest="md5:" + md5[:32],
                   size=int(out.get("size", 0) or 0),
                   files=int(out.get("nfiles", 0) or 0) if is_dir else 1,
                   source="dvc", origin=origin)


def _yaml(text: str, origin: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataError(f"not valid YAML: {exc}", path=origin, hint="") from None


def refs_from_dvc_file(text: str, *, origin: str) -> list[DataRef]:
    """The outs of a `.dvc` file; paths are relative to the file's directory."""
    doc = _yaml(text, origin)
    outs = doc.get("outs") if isinstance(doc, dict) else None
    if not isinstance(outs, list):
        raise DataError("no `outs` list", path=origin, hint="is it a DVC file?")
    return [_out_ref(out, origin, f"outs[{i}]") for i, out in enumerate(outs)]


def refs_from_dvc_lock(text: str, *, origin: str) -> list[DataRef]:
    """Every stage's outs in a `dvc.lock`; paths are relative to its directory."""
    doc = _yaml(text, origin)
    stages = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(stages, dict):
        raise DataError("no `stages` table", path=origin, hint="is it a dvc.lock?")
    refs = []
    for name in sorted(stages):
        stage = stages[name]
        outs = stage.get("outs", []) if isinstance(stage, dict) else []
        refs += [_out_ref(out, origin, f"stages.{name}.outs[{i}]") for i, out in enumerate(outs)]
    return refs
