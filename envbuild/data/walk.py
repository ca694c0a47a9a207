"""Finding a ref's files, refusing what must not become data.

Refused, each naming the path: a path outside the project; a symlink loop; a symlink whose target
leaves the project; a device, socket or FIFO; a directory that cannot be read. A symlink whose
target stays inside the project is followed: the ref records the target's bytes at the link's
path (checkout writes a regular file there).
"""

from __future__ import annotations

import os
import stat as statmod
from pathlib import Path
from typing import NamedTuple

from envbuild.data.errors import DataError
from envbuild.data.hashing import FileStat

_SPECIAL = "not a regular file or directory (a device, socket or FIFO)"


class WalkFile(NamedTuple):
    rel: str  # relative to the ref's root, POSIX; "" for a file ref
    path: str  # absolute path to open
    stat: FileStat


def project_path(project: Path, path: str | Path, *, cwd: Path | None = None) -> str:
    """`path` (absolute, or relative to cwd) as a POSIX path relative to the project.

    The path is normalised without following symlinks; a path that leaves the project, or is the
    project itself, is refused.
    """
    root = os.path.abspath(project)
    full = os.path.abspath(os.path.join(cwd or os.getcwd(), path))
    rel = os.path.relpath(full, root)
    if rel == "." or rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        what = "is the project itself" if rel == "." else "is outside the project"
        raise DataError(what, path=str(path), hint=f"data paths lie inside {root}")
    return Path(rel).as_posix()


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _follow(link: str, display: str, root_real: str) -> tuple[str, os.stat_result]:
    try:
        target = os.path.realpath(link, strict=True)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise DataError("symlink loop", path=display, hint="remove or fix the symlink") from None
        raise DataError(f"broken symlink ({exc.strerror})", path=display,
                        hint="remove or fix the symlink") from None
    if not _inside(target, root_real):
        raise DataError(f"symlink leaves the project (-> {target})", path=display,
                        hint="copy the data into the project, or add it from where it lives")
    try:
        return target, os.stat(target)
    except OSError as exc:
        raise DataError(f"cannot stat the symlink's target: {exc.strerror}", path=display,
                        hint="") from None


def walk(project: Path, rel: str) -> tuple[str, list[WalkFile]]:
    """("file" | "dir", the files) of the project path `rel`. FileNotFoundError when absent."""
    root_real = os.path.realpath(project)
    top = os.path.join(os.path.abspath(project), rel)
    st = os.lstat(top)  # FileNotFoundError goes to the caller: "missing" is a state, not an error
    if statmod.S_ISLNK(st.st_mode):
        _, st = _follow(top, rel, root_real)
    if statmod.S_ISREG(st.st_mode):
        return "file", [WalkFile(rel="", path=top, stat=FileStat.of(st))]
    if not statmod.S_ISDIR(st.st_mode):
        raise DataError(_SPECIAL, path=rel, hint="data refs hold regular files and directories")
    files: list[WalkFile] = []
    # (absolute dir, relative prefix, (dev, ino) of the dirs above it: a symlink back into one of
    # them is a loop)
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
        (top, "", frozenset({(st.st_dev, st.st_ino)}))]
    while stack:
        directory, prefix, above = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except PermissionError:
            raise DataError("permission denied", path=f"{rel}/{prefix}".rstrip("/"),
                            hint="give envbuild read access to the directory") from None
        for entry in entries:
            name = prefix + entry.name
            if entry.is_symlink():
                display = f"{rel}/{name}"
                _, tst = _follow(entry.path, display, root_real)
                if statmod.S_ISDIR(tst.st_mode):
                    key = (tst.st_dev, tst.st_ino)
                    if key in above:
                        raise DataError("symlink loop", path=display,
                                        hint="remove or fix the symlink")
                    stack.append((entry.path, name + "/", above | {key}))
                elif statmod.S_ISREG(tst.st_mode):
                    files.append(WalkFile(rel=name, path=entry.path, stat=FileStat.of(tst)))
                else:
                    raise DataError(_SPECIAL, path=display, hint="leave it out of the data")
            elif entry.is_dir(follow_symlinks=False):
                dst = entry.stat(follow_symlinks=False)
                stack.append((entry.path, name + "/", above | {(dst.st_dev, dst.st_ino)}))
            elif entry.is_file(follow_symlinks=False):
                est = entry.stat(follow_symlinks=False)
                files.append(WalkFile(name, entry.path, FileStat(
                    est.st_size, est.st_mtime_ns, est.st_ino, est.st_mode)))
            else:
                raise DataError(_SPECIAL, path=f"{rel}/{name}", hint="leave it out of the data")
    return "dir", files
