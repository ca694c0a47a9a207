"""`envbuild init`: a commented envbuild.toml for an existing project."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from envbuild.errors import SpecError
from envbuild.spec.load import SUPPORTED_PLATFORMS, parse_spec
from envbuild.spec.model import DEFAULT_PLATFORMS
from envbuild.templating import render


def bundle_name(directory_name: str) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", directory_name.lower()).strip("-._")
    return name or "bundle"


def detect_sources(project: Path) -> list[str]:
    """requirements.in beats requirements.txt (it is the intent); else pyproject.toml."""
    for name in ("requirements.in", "requirements.txt"):
        if (project / name).is_file():
            return [name]
    pyproject = project / "pyproject.toml"
    if pyproject.is_file():
        doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        if "envbuild" in doc.get("tool", {}):
            raise SpecError("this project already has a spec in [tool.envbuild]",
                            file="pyproject.toml", key="tool.envbuild",
                            hint="edit it there, or remove it to start over")
        if "dependencies" in doc.get("project", {}) or \
                "dependencies" in doc.get("tool", {}).get("poetry", {}):
            return ["pyproject.toml"]
    raise SpecError("no requirements.in, requirements.txt or pyproject.toml with dependencies",
                    file=str(project), hint="create one of them, then run `envbuild init` again")


def render_init_spec(*, name: str, python: str, requirements: list[str], base: str | None) -> bytes:
    """The commented spec `envbuild init` writes; checked by the spec parser before returning."""
    text = render("envbuild.toml.j2", name=name, python=python, requirements=requirements,
                  base=base, platforms=list(DEFAULT_PLATFORMS), supported=SUPPORTED_PLATFORMS)
    parse_spec(text.decode())
    return text
