"""Finding a ref's files, refusing what must not become data.

Refused, each naming the path: a path outside the project; a symlink loop; a symlink whose target
leaves the project; a device, socket or FIFO; a directory that cannot be read. A symlink whose
target stays inside the project is followed: the ref records the target's bytes at the link's
path (checkout writes a regular file there).

Speed: a no-change `data status` is this walk plus a comparison, so it is written to cost no
more than a bare `os.walk` + `os.lstat` loop: each directory is scanned through an open fd, so
`DirEntry.stat` is an `fstatat` relative to it (no path lookup from the root per file), the
entry type comes from the directory listing itself, and a file becomes one plain tuple.
"""

from __future__ import annotations

import errno
import os
import stat as statmod
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path

from envbuild.data.errors import DataError

_SPECIAL = "not a regular file or directory (a device, socket or FIFO)"

# One file of a walk: (path relative to the walked root, POSIX, "" for a file ref; size,
# mtime_ns, inode, mode). A plain tuple: the stat cache stores and compares lists of them as they
# are, and a walk of 20,000 files makes 20,000 of them.
Entry = tuple[str, int, int, int, int]
# Whether a project path (POSIX; is it a directory) is left out: DVC's .dvcignore for md5 refs.
Ignore = Callable[[str, bool], bool]


def entry_of(rel: str, st: os.stat_result) -> Entry:
    return (rel, st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode)


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
        if exc.errno == errno.ELOOP:
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


def walk_chunks(project: Path, rel: str,
                ignore: Ignore | None = None) -> tuple[str, Iterator[list[Entry]]]:
    """("file" | "dir", the files) of the project path `rel`, one directory's files at a time:
    hashing can start on the first directories while the walk goes on. The path itself is
    looked at now (FileNotFoundError when absent, a file, a special file); the rest of the
    walk's errors come from the iterator.

    A file's one entry has the relative path ""; a directory's entries come in directory order
    (the tree digest sorts them). The file to open is `os.path.join(project, rel, entry[0])`:
    symlinked directories are walked through the link, so that path reaches the same file.
    Paths `ignore` names are left out, and ignored directories are not entered.
    """
    root_real = os.path.realpath(project)
    top = os.path.join(os.path.abspath(project), rel)
    st = os.lstat(top)  # FileNotFoundError goes to the caller: "missing" is a state, not an error
    if statmod.S_ISLNK(st.st_mode):
        _, st = _follow(top, rel, root_real)
    if statmod.S_ISREG(st.st_mode):
        return "file", iter([[entry_of("", st)]])
    if not statmod.S_ISDIR(st.st_mode):
        raise DataError(_SPECIAL, path=rel, hint="data refs hold regular files and directories")
    return "dir", _walk_dir(top, rel, st, root_real, ignore)


def _walk_dir(top: str, rel: str, st: os.stat_result, root_real: str,
              ignore: Ignore | None) -> Iterator[list[Entry]]:
    # (absolute dir, relative prefix, (dev, ino) of the dirs above it: a symlink back into one of
    # them is a loop)
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
        (top, "", frozenset({(st.st_dev, st.st_ino)}))]
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    while stack:
        directory, prefix, above = stack.pop()
        try:
            fd = os.open(directory, flags)
        except PermissionError:
            raise DataError("permission denied", path=f"{rel}/{prefix}".rstrip("/"),
                            hint="give envbuild read access to the directory") from None
        files: list[Entry] = []
        append = files.append
        try:
            with os.scandir(fd) as it:
                for entry in it:
                    if entry.is_file(follow_symlinks=False):  # the listing's type: no syscall
                        if ignore is None or not ignore(f"{rel}/{prefix}{entry.name}", False):
                            est = entry.stat(follow_symlinks=False)  # fstatat(fd, name)
                            append((prefix + entry.name, est.st_size, est.st_mtime_ns,
                                    est.st_ino, est.st_mode))
                        continue
                    name = prefix + entry.name
                    path = os.path.join(directory, entry.name)
                    if ignore is not None and ignore(f"{rel}/{name}", entry.is_dir()):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        dst = entry.stat(follow_symlinks=False)
                        stack.append((path, name + "/", above | {(dst.st_dev, dst.st_ino)}))
                    elif entry.is_symlink():
                        display = f"{rel}/{name}"
                        _, tst = _follow(path, display, root_real)
                        if statmod.S_ISDIR(tst.st_mode):
                            key = (tst.st_dev, tst.st_ino)
                            if key in above:
                                raise DataError("symlink loop", path=display,
                                                hint="remove or fix the symlink")
                            stack.append((path, name + "/", above | {key}))
                        elif statmod.S_ISREG(tst.st_mode):
                            append(entry_of(name, tst))
                        else:
                            raise DataError(_SPECIAL, path=display,
                                            hint="leave it out of the data")
                    else:
                        raise DataError(_SPECIAL, path=f"{rel}/{name}",
                                        hint="leave it out of the data")
        except PermissionError:
            raise DataError("permission denied", path=f"{rel}/{prefix}".rstrip("/"),
                            hint="give envbuild read access to the directory") from None
        finally:
            os.close(fd)
        if files:
            yield files


def unchanged(project: Path, rel: str, kind: str, names: list[str], numbers: array[int]) -> bool:
    """Whether `walk_chunks(project, rel)` would give exactly these entries, without making them.

    `names[i]` and `numbers[4 * i:4 * i + 4]` (size, mtime_ns, inode, mode) are entry i, in
    walk order. This is the walk above minus everything a no-change status does not need: it
    stops at the first difference, builds no tuples, and gives up (False: the full walk decides)
    at a symlink or anything else unusual. It must visit directories in the same order as walk.
    """
    top = os.path.join(os.path.abspath(project), rel)
    try:
        st = os.lstat(top)
    except OSError:
        return False
    if statmod.S_ISREG(st.st_mode):
        return kind == "file" and len(names) == 1 and names[0] == "" and numbers.tolist() == [
            st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode]
    if kind == "table" and statmod.S_ISDIR(st.st_mode):
        return _files_unchanged(top, names, numbers)
    if kind != "dir" or not statmod.S_ISDIR(st.st_mode):
        return False
    i, count = 0, len(names)
    stack = [(top, "")]
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    while stack:
        directory, prefix = stack.pop()
        try:
            fd = os.open(directory, flags)
        except OSError:
            return False
        try:
            with os.scandir(fd) as it:
                for entry in it:
                    if entry.is_file(follow_symlinks=False):
                        est = entry.stat(follow_symlinks=False)
                        j = 4 * i
                        if (i == count or names[i] != prefix + entry.name
                                or numbers[j] != est.st_size or numbers[j + 1] != est.st_mtime_ns
                                or numbers[j + 2] != est.st_ino or numbers[j + 3] != est.st_mode):
                            return False
                        i += 1
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append((os.path.join(directory, entry.name),
                                      prefix + entry.name + "/"))
                    else:
                        return False
        except OSError:
            return False
        finally:
            os.close(fd)
    return i == count


def _files_unchanged(top: str, names: list[str], numbers: array[int]) -> bool:
    """A table's files (some of the directory's, named) keep their stat: no walk needed.

    The table's commits are among them, so unchanged commits mean the same files are the
    table's; files the table does not name may come and go.
    """
    for i, name in enumerate(names):
        try:
            st = os.lstat(os.path.join(top, name))
        except OSError:
            return False
        j = 4 * i
        if not statmod.S_ISREG(st.st_mode) or numbers[j] != st.st_size or (
                numbers[j + 1] != st.st_mtime_ns or numbers[j + 2] != st.st_ino
                or numbers[j + 3] != st.st_mode):
            return False
    return True
