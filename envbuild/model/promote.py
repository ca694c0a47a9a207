"""Promotion, rollback and history of an MLflow alias, kept in MLflow itself.

Any machine that reaches the tracking server sees the same history and can roll back:
- every move is a registered-model tag `envbuild.move.NNNNNN` holding JSON
  {"action", "alias", "from", "to", "at"} (NNNNNN counts up from 000001);
- the version an alias is moved to gets the model-version tag `envbuild.previous.<alias>`: the
  version the alias pointed to before ("" when it pointed nowhere). Rollback follows it.

The functions take the MLflow client as an argument (unit tests pass a fake one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from envbuild.errors import LockError

MOVE_PREFIX = "envbuild.move."
PREVIOUS_PREFIX = "envbuild.previous."


@dataclass(frozen=True, kw_only=True, slots=True)
class Move:
    seq: int
    action: str  # promote | rollback
    alias: str
    from_version: str | None
    to_version: str
    at: str  # UTC, ISO 8601

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Move:
        return cls(seq=int(d["seq"]), action=d["action"], alias=d["alias"],
                   from_version=d.get("from") or None, to_version=str(d["to"]), at=d["at"])

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "action": self.action, "alias": self.alias,
                "from": self.from_version or "", "to": self.to_version, "at": self.at}


def _moves(model: Any) -> list[Move]:
    out = []
    for key, value in (model.tags or {}).items():
        if key.startswith(MOVE_PREFIX):
            try:
                out.append(Move.from_dict({**json.loads(value),
                                           "seq": key.removeprefix(MOVE_PREFIX)}))
            except (ValueError, KeyError, TypeError):
                continue  # not ours, or damaged: history shows what it can read
    return sorted(out, key=lambda m: m.seq)


def _record(client: Any, name: str, move: Move) -> None:
    payload = {k: v for k, v in move.to_dict().items() if k != "seq"}
    client.set_registered_model_tag(name, f"{MOVE_PREFIX}{move.seq:06d}",
                                    json.dumps(payload, sort_keys=True))


def _move(client: Any, name: str, alias: str, to: str, action: str, at: str,
          *, remember_previous: bool) -> Move:
    model = client.get_registered_model(name)
    current = model.aliases.get(alias)
    current = str(current) if current is not None else None
    client.get_model_version(name, to)  # an unknown version fails before anything moves
    if remember_previous:
        client.set_model_version_tag(name, to, f"{PREVIOUS_PREFIX}{alias}", current or "")
    client.set_registered_model_alias(name, alias, to)
    seq = max((m.seq for m in _moves(model)), default=0) + 1
    move = Move(seq=seq, action=action, alias=alias, from_version=current, to_version=to, at=at)
    _record(client, name, move)
    return move


def promote(client: Any, name: str, version: str, alias: str, *, at: str) -> Move:
    """Point `alias` at `version`, remembering where it pointed before."""
    return _move(client, name, alias, str(version), "promote", at, remember_previous=True)


def rollback(client: Any, name: str, alias: str, *, at: str) -> Move:
    """Point `alias` back at the version it pointed to before its current version was promoted."""
    model = client.get_registered_model(name)
    current = model.aliases.get(alias)
    if current is None:
        raise LockError(f"model {name} has no alias {alias!r}: nothing to roll back",
                        hint=f"`envbuild model promote {name} VERSION --alias {alias}` sets it")
    tags = client.get_model_version(name, str(current)).tags or {}
    previous = tags.get(f"{PREVIOUS_PREFIX}{alias}")
    if not previous:
        raise LockError(
            f"model {name}: alias {alias!r} points to version {current}, and no earlier version "
            "is recorded for it",
            hint="only moves made with `envbuild model promote` can be rolled back; "
            "promote a version explicitly instead",
        )
    return _move(client, name, alias, previous, "rollback", at, remember_previous=False)


def history(client: Any, name: str, alias: str | None = None) -> list[Move]:
    moves = _moves(client.get_registered_model(name))
    return [m for m in moves if alias is None or m.alias == alias]
