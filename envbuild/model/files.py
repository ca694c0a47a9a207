"""Reading a model directory into the listing the model digest is computed over (the shell)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from envbuild.errors import IntegrityError
from envbuild.model.pin import IGNORED_FILES, ModelFile, ModelPin, model_digest


def list_model_files(root: Path) -> tuple[ModelFile, ...]:
    """Every regular file below `root` with its size and sha256, minus IGNORED_FILES at the top.

    A symlink is refused: what it points to is not part of the model's bytes.
    """
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if rel in IGNORED_FILES:
                continue
            if path.is_symlink() or not path.is_file():
                raise IntegrityError(f"model file {rel} is not a regular file",
                                     hint="a model directory holds regular files only")
            with path.open("rb") as f:
                sha = hashlib.file_digest(f, "sha256").hexdigest()
            out.append(ModelFile(path=rel, size=path.stat().st_size, sha256=sha))
    return tuple(sorted(out, key=lambda f: f.path.encode()))


def check_model_files(root: Path, pin: ModelPin) -> None:
    """Raise IntegrityError unless the files below `root` are exactly the locked ones."""
    files = list_model_files(root)
    if model_digest(files) == pin.digest:
        return
    have = {f.path: f for f in files}
    want = {f.path: f for f in pin.files}
    problems = [f"{p}: changed" for p in sorted(set(have) & set(want)) if have[p] != want[p]]
    problems += [f"{p}: not in the lock" for p in sorted(set(have) - set(want))]
    problems += [f"{p}: missing" for p in sorted(set(want) - set(have))]
    detail = "; ".join(problems[:5]) or "the file listing differs"
    raise IntegrityError(
        f"model {pin.pinned_uri}: digest mismatch: the lock has {pin.digest}, the files give "
        f"{model_digest(files)} ({detail})",
        hint="the registered model's files changed after locking; nothing was imported. "
        "Re-run `envbuild lock` only if the change is intended",
    )
