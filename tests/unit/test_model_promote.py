"""Promotion, rollback and history against a fake MLflow client (the real one: integration)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from envbuild.errors import LockError
from envbuild.model.promote import Move, history, promote, rollback


@dataclass
class FakeVersion:
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeModel:
    aliases: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class FakeClient:
    """The few MlflowClient calls promote.py makes; versions are ints as a sqlite store gives."""

    def __init__(self, versions: int) -> None:
        self.model = FakeModel()
        self.versions = {str(v): FakeVersion() for v in range(1, versions + 1)}

    def get_registered_model(self, name: str) -> FakeModel:
        return FakeModel(aliases=dict(self.model.aliases), tags=dict(self.model.tags))

    def get_model_version(self, name: str, version: str) -> FakeVersion:
        if str(version) not in self.versions:
            raise LookupError(f"no version {version}")
        return self.versions[str(version)]

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.versions[str(version)].tags[key] = value

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.model.aliases[alias] = int(version)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self.model.tags[key] = value


def test_promote_rollback_history() -> None:
    client = FakeClient(3)
    first = promote(client, "churn", "1", "production", at="t1")
    assert first == Move(seq=1, action="promote", alias="production", from_version=None,
                         to_version="1", at="t1")
    promote(client, "churn", "2", "production", at="t2")
    promote(client, "churn", "3", "production", at="t3")
    promote(client, "churn", "1", "staging", at="t4")
    back = rollback(client, "churn", "production", at="t5")
    assert (back.from_version, back.to_version, back.action) == ("3", "2", "rollback")
    assert client.model.aliases["production"] == 2
    back = rollback(client, "churn", "production", at="t6")
    assert (back.from_version, back.to_version) == ("2", "1")
    with pytest.raises(LockError, match="no earlier version"):
        rollback(client, "churn", "production", at="t7")
    moves = history(client, "churn")
    assert [(m.seq, m.action, m.alias, m.from_version, m.to_version) for m in moves] == [
        (1, "promote", "production", None, "1"),
        (2, "promote", "production", "1", "2"),
        (3, "promote", "production", "2", "3"),
        (4, "promote", "staging", None, "1"),
        (5, "rollback", "production", "3", "2"),
        (6, "rollback", "production", "2", "1"),
    ]
    assert [m.seq for m in history(client, "churn", "staging")] == [4]
    assert Move.from_dict(moves[1].to_dict()) == moves[1]


def test_unknown_version_moves_nothing() -> None:
    client = FakeClient(1)
    promote(client, "churn", "1", "production", at="t1")
    with pytest.raises(LookupError):
        promote(client, "churn", "7", "production", at="t2")
    assert client.model.aliases == {"production": 1}
    assert len(history(client, "churn")) == 1


def test_rollback_without_alias() -> None:
    with pytest.raises(LockError, match="no alias 'production'"):
        rollback(FakeClient(1), "churn", "production", at="t")


def test_history_skips_foreign_tags() -> None:
    client = FakeClient(1)
    client.model.tags["envbuild.move.000009"] = "not json"
    client.model.tags["team"] = "ml"
    assert history(client, "churn") == []
