"""The model's part of `envbuild lock` and `envbuild lock --check`.

A spec with `models:/NAME/VERSION` whose lock already pins that version needs no registry call
(and no mlflow import). An alias may have moved, so a spec with `models:/NAME@ALIAS` asks the
registry once where it points; only a new version is downloaded and hashed again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from envbuild.model.pin import DEFAULT_TRACKING_URI, ModelPin, ModelRef
from envbuild.spec.model import ModelSpec

Status = Callable[[str], None]


def _identity(pin: ModelPin) -> tuple[str, str, str]:
    return pin.version, pin.run_id or "", pin.source


def _same_request(pin: ModelPin, spec: ModelSpec) -> bool:
    return pin.uri == spec.uri and pin.tracking_uri == (spec.tracking_uri or DEFAULT_TRACKING_URI)


def lock_model(project: Path, spec: ModelSpec | None, previous: Mapping[str, Any],
               status: Status = lambda _: None) -> dict[str, Any]:
    """The [model] table for the lock: {} without a [model] section; else a pinned version."""
    if spec is None:
        return {}
    tracking_uri = spec.tracking_uri or DEFAULT_TRACKING_URI
    ref = ModelRef.parse(spec.uri)
    old = ModelPin.from_dict(previous) if previous else None
    if old is not None and _same_request(old, spec):
        if ref.alias is None:
            return old.to_dict()  # a fixed version: nothing can have moved
        from envbuild.model.registry import alias_target

        status(f"checking where {spec.uri} points")
        if alias_target(project, tracking_uri, ref.name, ref.alias) == _identity(old):
            return old.to_dict()
    from envbuild.model.registry import resolve_pin

    status(f"resolving {spec.uri} in {tracking_uri}")
    return resolve_pin(project, spec.uri, tracking_uri).to_dict()


def model_stale_reasons(project: Path, spec: ModelSpec | None,
                        locked: Mapping[str, Any]) -> list[str]:
    """Why the lock's model no longer matches: each reason starts with "model:".

    Queries the registry only when the spec names an alias (the only thing that moves without
    a file changing); everything else is answered from the files.
    """
    if spec is None:
        return ["model: locked, but the spec has no [model] section"] if locked else []
    if not locked:
        return ["model: the spec's [model] is not locked yet"]
    pin = ModelPin.from_dict(locked)
    if not _same_request(pin, spec):
        return ["model: the spec's [model] changed since the lock"]
    ref = ModelRef.parse(spec.uri)
    if ref.alias is None:
        return []
    from envbuild.model.registry import alias_target

    now = alias_target(project, pin.tracking_uri, ref.name, ref.alias)
    if now[0] != pin.version:
        return [(f"model: alias {ref.alias!r} of {ref.name} now points to version {now[0]} "
                 f"(locked: {pin.version})")]
    if now != _identity(pin):
        return [(f"model: alias {ref.alias!r} of {ref.name} points to version {now[0]} of "
                 f"another store (run {now[1] or '-'}; locked: run {pin.run_id or '-'})")]
    return []
