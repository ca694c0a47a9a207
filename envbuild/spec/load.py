"""Reading and validating the spec. Every error names the file and the exact key path."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envbuild.errors import SpecError
from envbuild.spec.model import MODEL_CONDA_ENV, Spec

SPEC_FILE = "envbuild.toml"
PYPROJECT = "pyproject.toml"
SUPPORTED_PLATFORMS = ("linux/amd64", "linux/arm64")

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_PYTHON = re.compile(r"^3\.\d+(\.\d+)?$")
_GLIBC = re.compile(r"^2\.\d+$")
_MODEL_URI = re.compile(r"^models:/[^/@]+(@[A-Za-z0-9_-]+|/[0-9]+)$")

Check = Callable[[Any], str | None]  # returns a problem, or None when the value is fine


def _string(pattern: re.Pattern[str] | None = None, what: str = "") -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"expected a string, got {type(value).__name__}"
        if pattern is not None and not pattern.match(value):
            return f"{value!r} is not {what}"
        return None

    return check


def _strings(allowed: tuple[str, ...] | None = None, *, nonempty: bool = False,
             unique: bool = True, pattern: re.Pattern[str] | None = None,
             what: str = "") -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "expected a list of strings"
        if nonempty and not value:
            return "expected at least one entry"
        for v in value:
            if allowed is not None and v not in allowed:
                return f"{v!r} is not supported (supported: {', '.join(allowed)})"
            if pattern is not None and not pattern.match(v):
                return f"{v!r} is not {what}"
        if unique and len(set(value)) != len(value):
            return "an entry repeats"
        return None

    return check


def _port(value: Any) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        return f"expected a port number from 1 to 65535, got {value!r}"
    return None


# Relative, no '..', no leading '/': the code layer never reaches outside the project.
_CODE_PATH = re.compile(r"^(?!/)(?!.*(^|/)\.\.(/|$))[^\0\n]+$")


CONDA_PLATFORMS = ("linux-64", "linux-aarch64")
_CHANNEL = re.compile(r"^((https?|file)://\S+|[A-Za-z0-9][A-Za-z0-9._-]*)$")


# key -> check; a nested dict is a table with its own keys. The model and data tables are the
# room other parts of the lock fill in; their keys are validated here already.
SCHEMA: dict[str, Any] = {
    "name": _string(_NAME, "a bundle name (lowercase letters, digits, '.', '_', '-')"),
    "python": _string(_PYTHON, "a Python version such as '3.11'"),
    "platforms": _strings(SUPPORTED_PLATFORMS),
    "requirements": _strings(),
    "index_url": _string(re.compile(r"^(https?|file)://"), "an http(s) or file URL"),
    "glibc": _string(_GLIBC, "a glibc version such as '2.36'"),
    "image": {
        "base": _string(),
        "name": _string(_NAME, "an image name"),
        "cmd": _strings(nonempty=True, unique=False),
        "port": _port,
        "healthcheck": _string(re.compile(r"^/[A-Za-z0-9._~/-]*$"), "an HTTP path such as '/healthz'"),
        "code": _strings(pattern=_CODE_PATH, what="a relative path inside the project"),
    },
    "model": {
        "uri": _string(_MODEL_URI, "a model URI 'models:/NAME@ALIAS' or 'models:/NAME/VERSION'"),
        "registry": _string(re.compile(r"^mlflow$"), "a supported registry ('mlflow')"),
        "tracking_uri": _string(),
        "environment": _string(re.compile(r"^conda$"), "'conda' (the model's conda.yaml)"),
    },
    "nix": {
        "nixpkgs_rev": _string(re.compile(r"^[0-9a-f]{40}$"), "a 40-hex nixpkgs commit"),
        "nixpkgs_nar_hash": _string(re.compile(r"^sha256-[A-Za-z0-9+/]{43}=$"),
                                    "an SRI sha256 NAR hash as flake.lock records it"),
    },
    "conda": {
        "environment": _string(_CODE_PATH, "a relative path inside the project"),
        "channels": _strings(pattern=_CHANNEL, what="a channel URL (https://, http://, file://) "
                             "or name"),
        "platforms": _strings(CONDA_PLATFORMS, nonempty=True),
    },
    "data": {
        "paths": _strings(),
        "remote": _string(re.compile(r"^(file|s3)://"), "a file:// or s3:// URL"),
    },
}
REQUIRED = {"name": "", "model.uri": "model", "nix.nixpkgs_rev": "nix",
            "nix.nixpkgs_nar_hash": "nix"}


def _validate(table: dict[str, Any], schema: dict[str, Any], file: str, prefix: str) -> None:
    for key in sorted(table):
        path = f"{prefix}{key}"
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise SpecError(f"unknown key {key!r}", file=file, key=path, hint=f"known keys: {known}")
        rule = schema[key]
        value = table[key]
        if isinstance(rule, dict):
            if not isinstance(value, dict):
                raise SpecError(
                    f"expected a table, got {type(value).__name__}", file=file, key=path,
                    hint=f"write it as [{path}]",
                )
            _validate(value, rule, file, path + ".")
        elif (problem := rule(value)) is not None:
            raise SpecError(problem, file=file, key=path, hint="see the spec format in the README")


def _require(table: dict[str, Any], file: str, prefix: str) -> None:
    for dotted, parent in REQUIRED.items():
        if parent and parent not in table:
            continue
        node: Any = table
        for part in dotted.split("."):
            if part not in node:
                raise SpecError(
                    "missing required key", file=file, key=prefix + dotted,
                    hint="`envbuild init` writes a complete spec to start from",
                )
            node = node[part]


def parse_spec(text: str, *, file: str = SPEC_FILE, section: str = "") -> Spec:
    """Parse spec text (a whole envbuild.toml, or a pyproject.toml holding [tool.envbuild])."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"not valid TOML: {exc}", file=file, hint="fix the TOML syntax") from None
    table: Any = doc
    if section:
        for part in section.split("."):
            table = table.get(part, {}) if isinstance(table, dict) else {}
        if not isinstance(table, dict):
            raise SpecError("expected a table", file=file, key=section, hint="")
        if file.endswith(PYPROJECT) and "requirements" not in table:
            table = {**table, "requirements": [PYPROJECT]}
    prefix = f"{section}." if section else ""
    _validate(table, SCHEMA, file, prefix)
    _require(table, file, prefix)
    _check_conda_source(table, file, prefix)
    return Spec.from_dict(table, file=file, section=section)


def _check_conda_source(table: dict[str, Any], file: str, prefix: str) -> None:
    """Exactly one conda environment: [conda] environment, or the model's conda.yaml."""
    from_model = table.get("model", {}).get("environment") == "conda"
    named = "environment" in table.get("conda", {})
    if "conda" in table and not named and not from_model:
        raise SpecError("missing required key", file=file, key=f"{prefix}conda.environment",
                        hint='name the environment file, or set [model] environment = "conda"')
    if named and from_model:
        raise SpecError("two conda environments: this file and the model's conda.yaml",
                        file=file, key=f"{prefix}conda.environment",
                        hint='remove it, or remove [model] environment = "conda"')


def find_spec(project: Path) -> tuple[Path, str]:
    """Where the spec lives: envbuild.toml first, else [tool.envbuild] in pyproject.toml."""
    if (project / SPEC_FILE).is_file():
        return project / SPEC_FILE, ""
    pyproject = project / PYPROJECT
    if pyproject.is_file():
        try:
            doc = tomllib.loads(pyproject.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SpecError(f"not valid TOML: {exc}", file=PYPROJECT, hint="") from None
        if isinstance(doc.get("tool"), dict) and "envbuild" in doc["tool"]:
            return pyproject, "tool.envbuild"
    raise SpecError(
        "no spec found (no envbuild.toml, no [tool.envbuild] in pyproject.toml)",
        file=str(project / SPEC_FILE),
        hint="run `envbuild init` to write one",
    )


def load_spec(project: Path) -> Spec:
    """Find, read and validate the spec, and check that every file it references exists."""
    path, section = find_spec(project)
    file = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read: {exc}", file=file, hint="") from None
    spec = parse_spec(text, file=file, section=section)
    for i, req in enumerate(spec.requirements):
        if not (project / req).is_file():
            raise SpecError(
                f"file not found: {req}", file=file, key=f"{spec.key('requirements')}[{i}]",
                hint="paths are relative to the directory holding the spec",
            )
    for i, data_path in enumerate(spec.data.paths):
        if not (project / data_path).exists():
            raise SpecError(
                f"path not found: {data_path}", file=file, key=f"{spec.key('data.paths')}[{i}]",
                hint="paths are relative to the directory holding the spec",
            )
    for i, code_path in enumerate(spec.image.code):
        if not (project / code_path).exists():
            raise SpecError(
                f"path not found: {code_path}", file=file, key=f"{spec.key('image.code')}[{i}]",
                hint="paths are relative to the directory holding the spec",
            )
    if (spec.conda is not None and spec.conda.environment != MODEL_CONDA_ENV
            and not (project / spec.conda.environment).is_file()):
        raise SpecError(
            f"file not found: {spec.conda.environment}", file=file,
            key=spec.key("conda.environment"),
            hint="paths are relative to the directory holding the spec",
        )
    if not spec.requirements and spec.conda is None:
        raise SpecError(
            "no requirement source", file=file, key=spec.key("requirements"),
            hint='name one, e.g. requirements = ["requirements.in"]',
        )
    return spec
