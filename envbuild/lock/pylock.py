"""The Python lock: PEP 751 pylock.toml and the requirements.txt derived from it. Pure.

A resolver (uv or pip-tools) returns candidate packages with every file the index has; `select`
keeps, for each target platform, the one wheel that platform installs, and fails when a target
has only an sdist. Rendering sorts everything, so input order never reaches the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import tomlkit
from packaging.markers import InvalidMarker, Marker
from packaging.pylock import Pylock, PylockValidationError
from packaging.utils import canonicalize_name
from packaging.version import Version

from envbuild.errors import LockError
from envbuild.lock.platforms import Target

LOCK_VERSION = "1.0"


@dataclass(frozen=True, kw_only=True, slots=True)
class Wheel:
    name: str  # file name
    url: str
    size: int | None
    sha256: str  # hex, no prefix (pylock's form)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Wheel:
        url = d["url"]
        return cls(
            name=d.get("name") or unquote(urlsplit(url).path.rsplit("/", 1)[-1]),
            url=url,
            size=d.get("size"),
            sha256=d["hashes"]["sha256"],
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "url": self.url}
        if self.size is not None:
            out["size"] = self.size
        out["hashes"] = {"sha256": self.sha256}
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedPackage:
    name: str
    version: str
    marker: str | None
    wheels: tuple[Wheel, ...]

    @property
    def sort_key(self) -> tuple[str, Version, str]:
        return (self.name, Version(self.version), self.marker or "")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LockedPackage:
        return cls(
            name=d["name"],
            version=d["version"],
            marker=d.get("marker"),
            wheels=tuple(Wheel.from_dict(w) for w in d.get("wheels", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "version": self.version}
        if self.marker:
            out["marker"] = self.marker
        out["wheels"] = [w.to_dict() for w in self.wheels]
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class PythonLock:
    python: str
    targets: tuple[Target, ...]
    packages: tuple[LockedPackage, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "lock-version": LOCK_VERSION,
            "environments": [t.environment_marker for t in self.targets],
            "requires-python": f"=={'.'.join(self.python.split('.')[:2])}.*",
            "created-by": "envbuild",
            "packages": [p.to_dict() for p in sorted(self.packages, key=lambda p: p.sort_key)],
        }

    def wheels_for(self, target: Target) -> tuple[tuple[LockedPackage, Wheel], ...]:
        """The wheel each package installs on `target`, in package order."""
        out = []
        env = target.marker_env
        for pkg in sorted(self.packages, key=lambda p: p.sort_key):
            if pkg.marker and not Marker(pkg.marker).evaluate(env):
                continue
            if (wheel := best_wheel(pkg.wheels, target)) is not None:
                out.append((pkg, wheel))
        return tuple(out)


def best_wheel(wheels: tuple[Wheel, ...] | list[Wheel], target: Target) -> Wheel | None:
    """The wheel an installer picks on `target`: best tag rank, then file name."""
    ranked = [(r, w.name, w) for w in wheels if (r := target.wheel_rank(w.name)) is not None]
    return min(ranked, key=lambda rnw: rnw[:2])[2] if ranked else None


def _applies(marker: str | None, target: Target) -> bool:
    if not marker:
        return True
    try:
        return Marker(marker).evaluate(target.marker_env)
    except InvalidMarker as exc:
        raise LockError(f"the resolver returned an invalid marker {marker!r}: {exc}") from None


def _canonical_marker(needed_by: list[Target], targets: tuple[Target, ...]) -> str | None:
    """The resolver's marker restated as the targets it selects.

    Resolvers write the same condition in different words from run to run (uv adds
    `python_full_version >= '3.11'` or leaves it out depending on its preferences); the lock is
    only valid for its targets anyway, so naming them makes the marker canonical.
    """
    if len(needed_by) == len(targets):
        return None
    return " or ".join(f"({t.environment_marker})" for t in needed_by)


def select(candidates: list[dict[str, Any]], python: str, targets: tuple[Target, ...]) -> PythonLock:
    """Keep, per target, the best wheel of every package the target needs.

    `candidates` are pylock-shaped package dicts (name, version, marker, wheels, sdist) with
    every file the index offers. Packages no target needs (say, Windows-only) are dropped.
    """
    packages = []
    for cand in candidates:
        name = canonicalize_name(cand["name"])
        marker = cand.get("marker") or None
        needed_by = [t for t in targets if _applies(marker, t)]
        if not needed_by:
            continue
        offered = [Wheel.from_dict(w) for w in cand.get("wheels", ())]
        chosen: dict[str, Wheel] = {}
        for target in needed_by:
            best = best_wheel(offered, target)
            if best is None:
                only = "only an sdist" if cand.get("sdist") else "no compatible file"
                raise LockError(
                    f"{name} {cand['version']} has no wheel for {target.platform} "
                    f"(Python {target.python}, glibc <= {target.glibc}): the index offers {only}",
                    hint=f"pin a version of {name} that ships {target.arch} wheels, or remove "
                    f"{target.platform} from platforms in the spec",
                )
            chosen[best.name] = best
        wheels = tuple(sorted(chosen.values(), key=lambda w: w.name))
        packages.append(LockedPackage(name=name, version=str(cand["version"]),
                                      marker=_canonical_marker(needed_by, targets), wheels=wheels))
    return PythonLock(python=python, targets=targets, packages=tuple(packages))


def render_pylock(lock: PythonLock) -> bytes:
    """pylock.toml bytes: packages sorted by (name, version, marker), wheels by file name."""
    data = lock.to_dict()
    try:
        Pylock.from_dict(data)  # the PEP 751 model of pypa/packaging checks our output
    except PylockValidationError as exc:  # pragma: no cover - a bug in select, not user input
        raise LockError(f"internal error: generated pylock.toml is invalid: {exc}") from exc
    doc = tomlkit.document()
    doc.add(tomlkit.comment("pylock.toml: generated by `envbuild lock`; do not edit."))
    for key in ("lock-version", "environments", "requires-python", "created-by"):
        doc[key] = data[key]
    packages = tomlkit.aot()
    for pkg in data["packages"]:
        table = tomlkit.table()
        for key in ("name", "version", "marker"):
            if key in pkg:
                table[key] = pkg[key]
        wheels = tomlkit.array()
        wheels.multiline(True)
        for wheel in pkg["wheels"]:
            inline = tomlkit.inline_table()
            inline.update(wheel)
            wheels.append(inline)
        table["wheels"] = wheels
        packages.append(table)
    # tomlkit renders an empty array of tables as `packages = []` at the top: write it inline.
    doc["packages"] = packages if len(packages) else tomlkit.array()
    return tomlkit.dumps(doc).encode()


def parse_pylock(text: str, *, targets: tuple[Target, ...], file: str = "pylock.toml") -> PythonLock:
    """Read pylock.toml back; the targets come from envbuild.lock, which records them."""
    import tomllib

    try:
        data = tomllib.loads(text)
        Pylock.from_dict(data)
    except (tomllib.TOMLDecodeError, PylockValidationError) as exc:
        raise LockError(f"{file} is not a valid lock: {exc}", hint="re-run `envbuild lock`") from None
    return PythonLock(
        python=targets[0].python if targets else "",
        targets=targets,
        packages=tuple(LockedPackage.from_dict(p) for p in data.get("packages", [])),
    )


def render_requirements_txt(lock: PythonLock) -> bytes:
    """requirements.txt with --hash lines, for `pip install --require-hashes --no-deps`."""
    lines = [
        "# requirements.txt: derived from pylock.toml by `envbuild lock`; do not edit.",
        "# pip install --no-deps --require-hashes -r requirements.txt",
    ]
    for pkg in sorted(lock.packages, key=lambda p: p.sort_key):
        head = f"{pkg.name}=={pkg.version}"
        if pkg.marker:
            head += f" ; {pkg.marker}"
        hashes = [f"    --hash=sha256:{w.sha256}" for w in pkg.wheels]
        lines.append(" \\\n".join([head, *hashes]))
    return ("\n".join(lines) + "\n").encode()
