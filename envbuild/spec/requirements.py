"""Read the requirement sources a spec names into one normalised, sorted requirement set.

Sources: requirements files (`-r` includes followed, `--hash` options dropped), PEP 621
`[project].dependencies`, and Poetry's `[tool.poetry.dependencies]` read with poetry-core.
Sorting here is what makes the resolver's input, and so the lock, independent of the order the
user wrote things in.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from envbuild.errors import SpecError
from envbuild.spec.model import Spec
from envbuild.spec.sources import include_of, logical_lines

PYPROJECT = "pyproject.toml"
# Options that change what is installed rather than which index is asked: not supported.
_UNSUPPORTED = ("-e", "--editable", "-i", "--index-url", "--extra-index-url", "-f",
                "--find-links", "--no-index", "-c", "--constraint")

_HASH_OPTION = re.compile(r"\s--hash[=\s]\S+")


@dataclass(frozen=True, kw_only=True, slots=True)
class RequirementSet:
    requirements: tuple[str, ...]  # normalised PEP 508 strings, sorted
    files: tuple[str, ...]  # every file read, relative POSIX paths, sorted


def normalise(reqs: list[Requirement]) -> tuple[str, ...]:
    """Canonical name, sorted by (name, text), duplicates dropped."""
    out = set()
    for req in reqs:
        req.name = canonicalize_name(req.name)
        out.add(str(req))
    return tuple(sorted(out, key=lambda s: (canonicalize_name(Requirement(s).name), s)))


def read_requirements_file(
    project: Path, rel: str, spec_file: str, key: str, seen: set[str]
) -> list[Requirement]:
    if rel in seen:
        return []  # an include cycle or a file named twice: read once
    seen.add(rel)
    path = project / rel
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"file not found: {rel}", file=spec_file, key=key,
                        hint="paths are relative to the directory holding the spec") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read {rel}: {exc}", file=spec_file, key=key, hint="") from None
    reqs: list[Requirement] = []
    for number, line in logical_lines(text):
        if (include := include_of(rel, line)) is not None:
            reqs += read_requirements_file(project, include, spec_file, key, seen)
            continue
        words = line.split()
        if words[0].startswith("-"):
            option = words[0].split("=", 1)[0]
            hint = ("set index_url in the spec" if "index" in option
                    else "list the requirement itself in this file")
            if option in _UNSUPPORTED:
                raise SpecError(f"{rel}:{number}: option {option} is not supported yet",
                                file=spec_file, key=key, hint=hint)
            raise SpecError(f"{rel}:{number}: unknown option {option}", file=spec_file,
                            key=key, hint=hint)
        text_req = _HASH_OPTION.sub("", line).strip()
        try:
            req = Requirement(text_req)
        except InvalidRequirement as exc:
            raise SpecError(f"{rel}:{number}: invalid requirement {text_req!r}: {exc}",
                            file=spec_file, key=key, hint="use PEP 508 form, e.g. pandas>=2") from None
        if req.url:
            raise SpecError(f"{rel}:{number}: direct URL requirements are not supported yet",
                            file=spec_file, key=key, hint="require the package by name and version")
        reqs.append(req)
    return reqs


def read_pyproject(project: Path, spec_file: str, key: str) -> list[Requirement]:
    path = project / PYPROJECT
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError("file not found: pyproject.toml", file=spec_file, key=key, hint="") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"pyproject.toml is not valid TOML: {exc}", file=spec_file, key=key,
                        hint="") from None
    deps = doc.get("project", {}).get("dependencies")
    if deps is not None:
        try:
            return [Requirement(d) for d in deps]
        except InvalidRequirement as exc:
            raise SpecError(f"pyproject.toml: project.dependencies: {exc}", file=spec_file,
                            key=key, hint="use PEP 508 form") from None
    if "dependencies" in doc.get("tool", {}).get("poetry", {}):
        return _poetry_requirements(project, spec_file, key)
    raise SpecError("pyproject.toml has neither [project].dependencies nor "
                    "[tool.poetry.dependencies]", file=spec_file, key=key,
                    hint="declare the dependencies there, or name a requirements file")


def _poetry_requirements(project: Path, spec_file: str, key: str) -> list[Requirement]:
    # poetry-core knows Poetry's constraint syntax (^, ~, tables); turn each into PEP 508.
    from poetry.core.factory import Factory

    try:
        poetry = Factory().create_poetry(project)
    except Exception as exc:  # noqa: BLE001 - poetry-core raises many error types of its own
        raise SpecError(f"pyproject.toml: poetry-core could not read it: {exc}",
                        file=spec_file, key=key, hint="check [tool.poetry]") from None
    return [Requirement(dep.to_pep_508()) for dep in poetry.package.requires
            if not dep.is_optional()]


def read_requirement_set(project: Path, spec: Spec) -> RequirementSet:
    reqs: list[Requirement] = []
    seen: set[str] = set()
    for i, source in enumerate(spec.requirements):
        key = f"{spec.key('requirements')}[{i}]"
        if Path(source).name == PYPROJECT:
            reqs += read_pyproject(project, spec.file, key)
            seen.add(source)
        else:
            reqs += read_requirements_file(project, source, spec.file, key, seen)
    if not reqs:
        raise SpecError("the requirement sources name no package", file=spec.file,
                        key=spec.key("requirements"), hint="add at least one requirement")
    return RequirementSet(requirements=normalise(reqs), files=tuple(sorted(seen)))
