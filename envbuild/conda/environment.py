"""Reading a conda environment file (environment.yml, MLflow's conda.yaml). Pure: text in.

Errors name the file and the key path (`environment.yml: dependencies[2]: ...`), as the spec's do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from envbuild.errors import SpecError

# A conda match spec as environment files write it: "name", "name 1.2.*", "name=1.2", "name>=1".
_MATCH_SPEC = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(\s*[=<>!~ ].*)?$")
_KNOWN_KEYS = ("channels", "dependencies", "name", "platforms", "prefix", "variables")


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaEnvironment:
    name: str | None
    channels: tuple[str, ...]
    dependencies: tuple[str, ...]  # conda match specs, in the file's order
    pip: tuple[str, ...]  # the `pip:` list: PEP 508 requirements for the Python resolver

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CondaEnvironment:
        return cls(name=d.get("name"), channels=tuple(d.get("channels", ())),
                   dependencies=tuple(d.get("dependencies", ())), pip=tuple(d.get("pip", ())))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channels": list(self.channels),
                               "dependencies": list(self.dependencies), "pip": list(self.pip)}
        if self.name is not None:
            out["name"] = self.name
        return out

    @property
    def specs(self) -> tuple[str, ...]:
        """Match specs for a solver: `name=1.2` (conda's env-file form) becomes `name 1.2.*`."""
        return tuple(_solver_spec(d) for d in self.dependencies)


def _solver_spec(dep: str) -> str:
    name, sep, rest = dep.partition("=")
    if sep and rest and not rest.startswith("=") and not re.search(r"[<>!~ ]", name):
        version, _, build = rest.partition("=")
        star = version if version.endswith("*") else f"{version}.*"
        return f"{name} {star} {build}".rstrip() if build else f"{name} {star}"
    return dep


def parse_environment(text: str, *, file: str) -> CondaEnvironment:
    import yaml  # only where a conda environment is read

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {exc}", file=file, hint="fix the YAML syntax") from None
    if not isinstance(doc, dict):
        raise SpecError("expected a mapping with `dependencies`", file=file,
                        hint="see conda's environment.yml format")
    for key in sorted(doc):
        if key not in _KNOWN_KEYS:
            raise SpecError(f"unknown key {key!r}", file=file, key=str(key),
                            hint=f"known keys: {', '.join(_KNOWN_KEYS)}")
    channels = doc.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise SpecError("expected a list of channel names or URLs", file=file, key="channels",
                        hint="")
    deps: list[str] = []
    pip: list[str] = []
    raw = doc.get("dependencies") or []
    if not isinstance(raw, list):
        raise SpecError("expected a list", file=file, key="dependencies", hint="")
    for i, item in enumerate(raw):
        key = f"dependencies[{i}]"
        if isinstance(item, dict) and set(item) == {"pip"}:
            reqs = item["pip"] or []
            if not isinstance(reqs, list) or not all(isinstance(r, str) for r in reqs):
                raise SpecError("expected a list of requirements", file=file, key=f"{key}.pip",
                                hint="")
            for j, req in enumerate(reqs):
                if req.lstrip().startswith("-"):
                    raise SpecError(f"pip option {req!r} is not supported", file=file,
                                    key=f"{key}.pip[{j}]",
                                    hint="list plain requirements; the index comes from the spec")
            pip.extend(r.strip() for r in reqs)
        elif isinstance(item, str) and _MATCH_SPEC.match(item.strip()):
            deps.append(item.strip())
        else:
            raise SpecError(f"not a conda package spec: {item!r}", file=file, key=key,
                            hint="write e.g. `numpy >=1.26` or `python=3.11`")
    return CondaEnvironment(name=doc.get("name"),
                            channels=tuple(c for c in channels if c != "nodefaults"),
                            dependencies=tuple(deps), pip=tuple(pip))
