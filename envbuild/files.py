"""File helpers of the shell: atomic writes and file digests."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def _write_temp(path: Path, data: bytes) -> Path:
    import tempfile  # only when writing: a no-change run never imports it

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write temp, fsync, rename: a reader sees the old file or the new one, never half."""
    write_all_atomic({path: data})


def write_all_atomic(files: Mapping[Path, bytes]) -> None:
    """Write every file to a temp first and rename only once all writes succeeded.

    A full disk or any other failure while writing leaves every target as it was. Files are
    renamed in the given order, so put the file that commits the change (envbuild.lock) last.
    """
    temps: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            if path.exists() and path.read_bytes() == data:
                continue  # unchanged: keep the file (and its mtime) as it is
            temps.append((_write_temp(path, data), path))
    except BaseException:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, path in temps:
        os.replace(tmp, path)
    for directory in {path.parent for _, path in temps}:
        _fsync_dir(directory)
