"""Which files the requirements come from, found without parsing a single requirement.

`envbuild lock` and `lock --check` hash these files first; only when one changed does the
requirement set need parsing (packaging's parser costs more than the rest of a no-change run).
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from envbuild.errors import SpecError
from envbuild.spec.model import Spec

PYPROJECT = "pyproject.toml"


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each logical line: comments dropped, `\\` joined."""
    lines: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not buf:
            start = number
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            lines.append((start, buf.strip()))
        buf = ""
    if buf.strip():
        lines.append((start, buf.strip()))
    return lines


def include_of(rel: str, line: str) -> str | None:
    """The file a `-r FILE` / `--requirement FILE` line includes, relative to the project."""
    words = line.split()
    if words[0] in ("-r", "--requirement") and len(words) == 2:
        return posixpath.normpath(posixpath.join(posixpath.dirname(rel), words[1]))
    return None


def requirement_files(project: Path, spec: Spec) -> tuple[str, ...]:
    """Every file the spec's requirement sources read, includes followed; sorted."""
    seen: set[str] = set()
    pending = list(spec.requirements)
    while pending:
        rel = pending.pop()
        if rel in seen:
            continue
        seen.add(rel)
        if Path(rel).name == PYPROJECT:
            continue
        try:
            text = (project / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read {rel}: {exc}", file=spec.file,
                            key=spec.key("requirements"),
                            hint="paths are relative to the directory holding the spec") from None
        pending += [inc for _, line in logical_lines(text) if (inc := include_of(rel, line))]
    return tuple(sorted(seen))
