"""`.dvcignore`, applied as DVC applies it, for the refs imported from DVC.

DVC leaves out of a tracked directory every path its `.dvcignore` files match (gitignore syntax,
`pathspec` reads it as DVC does), so the md5 and file count that `import-dvc` pins cover only the
rest; hashing that directory again must leave out the same paths, or an untouched directory
would read as changed. As in DVC:
- `.dvcignore` files are read in the DVC repository's root (the nearest directory above the
  project, or the project itself, holding `.dvc/`) and in every directory below it; a pattern is
  relative to the directory of its file, and where several match, the last pattern of the deepest
  file wins (a `!pattern` there re-includes);
- `.git`, `.git/`, `.hg/` and `.dvc/` are always ignored, as if listed first in the root's file;
- an ignored directory is not entered, so nothing below it comes back (the walk prunes it).
envbuild's own (sha256) refs ignore nothing: they pin every file under their path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DVCIGNORE = ".dvcignore"
DEFAULTS = (".hg/", ".git/", ".git", ".dvc/")


def dvc_root(project: Path) -> Path:
    """The DVC repository holding the project: the nearest directory up with a `.dvc/`."""
    here = project.absolute()
    for directory in (here, *here.parents):
        if (directory / ".dvc").is_dir():
            return directory
    return here


def _spec(lines: list[str]) -> Any:
    import pathspec  # only with a .dvcignore: importing it costs tens of milliseconds

    return pathspec.GitIgnoreSpec.from_lines(lines)


class DvcIgnore:
    """Which project paths DVC ignores; `ignored(path, is_dir)` with a POSIX project path."""

    def __init__(self, project: Path) -> None:
        self.project = str(project.absolute())
        self.root = str(dvc_root(project))
        self._specs: dict[str, Any] = {}  # absolute directory -> its patterns, or None

    def _patterns(self, directory: str) -> Any:
        if directory not in self._specs:
            try:
                with open(os.path.join(directory, DVCIGNORE), encoding="utf-8") as f:
                    lines = [line.strip() for line in f]
            except OSError:
                lines = None
            lines = [ln for ln in lines or () if ln and not ln.startswith("#")]
            if directory == self.root:
                self._specs[directory] = _spec([*DEFAULTS, *lines]) if lines else "defaults"
            else:
                self._specs[directory] = _spec(lines) if lines else None
        return self._specs[directory]

    def ignored(self, path: str, is_dir: bool) -> bool:
        full = os.path.join(self.project, path)
        if not full.startswith(self.root + os.sep):
            return False
        parts = os.path.relpath(full, self.root).split(os.sep)
        decided: bool | None = None
        directory = self.root
        for depth in range(len(parts)):
            spec = self._patterns(directory)
            rel = "/".join(parts[depth:])
            if spec == "defaults":
                name = parts[-1]
                if name == ".git" or (is_dir and name in (".hg", ".dvc")):
                    decided = True
            elif spec is not None:
                match = _check(spec, rel, is_dir)
                if match is not None:
                    decided = match
            directory = os.path.join(directory, parts[depth])
        return bool(decided)


def _check(spec: Any, rel: str, is_dir: bool) -> bool | None:
    """True (ignored), False (re-included by `!`) or None (no pattern matches); for a directory
    as `name` and `name/`, the later-listed matching pattern deciding, as DVC does."""
    best = spec.check_file(rel)
    if is_dir:
        slash = spec.check_file(rel + "/")
        if slash.include is not None and (best.include is None or slash.index > best.index):
            best = slash
    return best.include  # type: ignore[no-any-return]
