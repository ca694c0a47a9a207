"""What changed between two locks: packages, base image, model, data, conda. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from envbuild.lock.loaded import Bundle

if TYPE_CHECKING:
    from envbuild.conda.lockfile import CondaLock


@dataclass(frozen=True, kw_only=True, slots=True)
class Change:
    """One difference: `kind` is added, removed, upgraded, downgraded, rebuilt or changed."""

    section: str  # python, packages, image, model, data, conda
    key: str  # package name or dotted key
    kind: str
    old: str | None
    new: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"section": self.section, "key": self.key, "kind": self.kind,
                "old": self.old, "new": self.new}

    def describe(self) -> str:
        if self.kind == "added":
            return f"{self.section}: {self.key} added ({self.new})"
        if self.kind == "removed":
            return f"{self.section}: {self.key} removed (was {self.old})"
        if self.kind == "rebuilt":
            what = "build or package hash" if self.section == "conda" else "wheel hashes"
            return f"{self.section}: {self.key} {self.new}: same version, different {what}"
        return f"{self.section}: {self.key} {self.kind} {self.old} -> {self.new}"


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list | tuple):
        return {prefix: ", ".join(str(v) for v in value)}
    return {prefix: str(value)}


def _mapping_changes(section: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    a, b = _flatten(old), _flatten(new)
    changes = []
    for key in sorted(set(a) | set(b)):
        if key not in a:
            changes.append(Change(section=section, key=key, kind="added", old=None, new=b[key]))
        elif key not in b:
            changes.append(Change(section=section, key=key, kind="removed", old=a[key], new=None))
        elif a[key] != b[key]:
            changes.append(Change(section=section, key=key, kind="changed", old=a[key], new=b[key]))
    return changes


def _version_kind(old: str, new: str) -> str:
    try:
        return "upgraded" if Version(new) > Version(old) else "downgraded"
    except ValueError:  # several versions under markers, or a version PEP 440 cannot read
        return "changed"


# A package index: key -> (version, what else identifies its bytes: hashes, build).
PackageIndex = dict[str, tuple[str, object]]


def _versioned_changes(section: str, a: PackageIndex, b: PackageIndex) -> list[Change]:
    """Packages added, removed, up- or downgraded, or rebuilt (same version, other bytes)."""
    changes = []
    for key in sorted(set(a) | set(b)):
        if key not in a:
            changes.append(Change(section=section, key=key, kind="added", old=None, new=b[key][0]))
        elif key not in b:
            changes.append(Change(section=section, key=key, kind="removed", old=a[key][0], new=None))
        elif a[key][0] != b[key][0]:
            changes.append(Change(section=section, key=key, kind=_version_kind(a[key][0], b[key][0]),
                                  old=a[key][0], new=b[key][0]))
        elif a[key][1] != b[key][1]:
            changes.append(Change(section=section, key=key, kind="rebuilt", old=a[key][0],
                                  new=b[key][0]))
    return changes


def _conda_changes(old: CondaLock | None, new: CondaLock | None) -> list[Change]:
    """Conda packages per platform, keyed `name (platform)`; rebuilt: another build or sha256."""
    def index(lock: CondaLock | None) -> PackageIndex:
        return {f"{p.name} ({p.platform})": (p.version, f"{p.build} {p.sha256}")
                for p in (lock.packages if lock else ())}

    return _versioned_changes("conda", index(old), index(new))


def _conda_table(lock: Any) -> dict[str, Any]:
    # The file's digest and package count are covered package by package by _conda_changes.
    return {k: v for k, v in lock.conda.items() if k not in ("lock_digest", "packages")}


def _package_changes(old: Bundle, new: Bundle) -> list[Change]:
    """Python packages by name; rebuilt: other wheel hashes."""
    def index(bundle: Bundle) -> PackageIndex:
        out: dict[str, tuple[str, frozenset[str]]] = {}
        for pkg in bundle.python.packages:
            version, hashes = out.get(pkg.name, ("", frozenset()))
            joined = f"{version}, {pkg.version}" if version and version != pkg.version else pkg.version
            out[pkg.name] = (joined, hashes | {w.sha256 for w in pkg.wheels})
        return dict(out)

    return _versioned_changes("packages", index(old), index(new))


def diff_bundles(old: Bundle, new: Bundle, *, old_conda: CondaLock | None = None,
                 new_conda: CondaLock | None = None) -> list[Change]:
    """Every difference that changes what gets built, in a fixed order. The conda packages
    live in conda-lock.yml, which the caller reads (and checks) for locks with a [conda] table."""
    python_old = {"version": old.lock.python.version, "platforms": list(old.lock.python.platforms),
                  "glibc": old.lock.python.glibc}
    python_new = {"version": new.lock.python.version, "platforms": list(new.lock.python.platforms),
                  "glibc": new.lock.python.glibc}
    return [
        *_mapping_changes("python", python_old, python_new),
        *_package_changes(old, new),
        *_mapping_changes("image", old.lock.image.to_dict(), new.lock.image.to_dict()),
        *_mapping_changes("model", old.lock.model, new.lock.model),
        *_mapping_changes("data", old.lock.data, new.lock.data),
        *_mapping_changes("conda", _conda_table(old.lock), _conda_table(new.lock)),
        *_conda_changes(old_conda, new_conda),
    ]
