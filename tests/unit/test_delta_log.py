"""Replaying a Delta Lake log to the files of one version (envbuild/data/delta.py)."""

from __future__ import annotations

import json

import pytest

from envbuild.data.delta import (
    DeltaError,
    Plan,
    checkpoints,
    commit_name,
    plan,
    table_files,
)


def commit(*actions: dict[str, object]) -> bytes:
    return b"".join(json.dumps(a).encode() + b"\n" for a in actions)


def add(path: str, **extra: object) -> dict[str, object]:
    return {"add": {"path": path, "size": 1, "dataChange": True, **extra}}


def remove(path: str) -> dict[str, object]:
    return {"remove": {"path": path, "dataChange": True}}


LOG = [
    commit({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
           {"metaData": {"id": "t"}}, add("a.parquet"), add("b.parquet")),
    commit({"commitInfo": {"operation": "WRITE"}}, add("p=x%20y/c.parquet")),
    commit(remove("a.parquet"), remove("p=x%20y/c.parquet"), add("d.parquet")),
]


def reader(log: list[bytes]):  # type: ignore[no-untyped-def]
    return lambda v: log[v]


def at(log: list[bytes], version: int) -> Plan:
    """How to read `version` of a log that still holds every commit from 0."""
    return plan([commit_name(v).split("/")[1] for v in range(len(log))], version)


def latest_version(log_names: list[str]) -> int:
    return plan(log_names).version


def test_each_version_is_the_replay_of_its_commits() -> None:
    assert table_files(reader(LOG), at(LOG, 0)) == [commit_name(0), "a.parquet", "b.parquet"]
    # URL-encoded in the log, as it is on disk: "p=x y/c.parquet"
    assert table_files(reader(LOG), at(LOG, 1)) == [commit_name(0), commit_name(1), "a.parquet",
                                           "b.parquet", "p=x y/c.parquet"]
    assert table_files(reader(LOG), at(LOG, 2)) == [commit_name(0), commit_name(1), commit_name(2),
                                           "b.parquet", "d.parquet"]
    assert commit_name(2) == "_delta_log/00000000000000000002.json"


def test_a_file_removed_and_added_again_is_in() -> None:
    log = [commit(add("a.parquet")), commit(remove("a.parquet")), commit(add("a.parquet"))]
    assert "a.parquet" not in table_files(reader(log), at(log, 1))
    assert "a.parquet" in table_files(reader(log), at(log, 2))


def test_the_latest_version_is_the_end_of_the_unbroken_run_of_commits() -> None:
    names = [commit_name(v).split("/")[1] for v in (0, 1, 2, 4)]
    assert latest_version(names + ["_last_checkpoint", "00000000000000000001.crc"]) == 2
    with pytest.raises(DeltaError, match="starts at version 10, with no checkpoint"):
        latest_version(["00000000000000000010.json", "00000000000000000011.json"])
    with pytest.raises(DeltaError, match="no commits"):
        latest_version(["part-0.parquet"])


@pytest.mark.parametrize(("action", "message"), [
    (add("s3://bucket/x.parquet"), "outside the table"),
    (add("/abs/x.parquet"), "outside the table"),
    (add("../x.parquet"), "bad data file path"),
    (add("_delta_log/x.parquet"), "inside _delta_log"),
    (add("x.parquet", deletionVector={"storageType": "u", "pathOrInlineDv": "ab^-aqEH.-t@S}K{vb[*k^"}),
     "deletion vector"),
    ({"add": {"size": 3}}, "without a path"),
])
def test_what_cannot_be_pinned_is_refused(action: dict[str, object], message: str) -> None:
    with pytest.raises(DeltaError, match=message):
        table_files(reader([commit(action)]), at([commit(action)], 0))


def test_an_inline_deletion_vector_is_in_the_log_and_fine() -> None:
    log = [commit(add("x.parquet", deletionVector={"storageType": "i", "pathOrInlineDv": "wi5b="}))]
    assert table_files(reader(log), at(log, 0)) == [commit_name(0), "x.parquet"]


def test_a_broken_commit_names_its_line() -> None:
    with pytest.raises(DeltaError, match=r"00000000000000000000\.json line 2: not JSON"):
        broken = [commit(add("a")) + b"{oops\n"]
        table_files(reader(broken), at(broken, 0))
    with pytest.raises(DeltaError, match="does not exist"):
        table_files(reader(LOG), at(LOG, -1))


def names(*items: str) -> list[str]:
    return list(items)


def test_a_cleaned_log_is_read_from_its_newest_checkpoint() -> None:
    log = names(*(f"{v:020d}.json" for v in (10, 11, 12, 13)),
                f"{10:020d}.checkpoint.parquet",
                f"{12:020d}.checkpoint.0000000001.0000000002.parquet",
                f"{12:020d}.checkpoint.0000000002.0000000002.parquet",
                f"{5:020d}.checkpoint.0000000001.0000000002.parquet")  # a part missing: ignored
    assert checkpoints(log) == {10: [f"{10:020d}.checkpoint.parquet"],
                                12: [f"{12:020d}.checkpoint.0000000001.0000000002.parquet",
                                     f"{12:020d}.checkpoint.0000000002.0000000002.parquet"]}
    newest = plan(log)
    assert (newest.version, newest.start, newest.commits) == (13, 12, (13,))
    at_11 = plan(log, 11)
    assert (at_11.start, at_11.checkpoint, at_11.commits) == (
        10, (f"{10:020d}.checkpoint.parquet",), (11,))
    with pytest.raises(DeltaError, match="cannot be read"):
        plan(log, 7)  # its commits are gone and no checkpoint is at or below it
    with pytest.raises(DeltaError, match="the newest is 13"):
        plan(log, 14)


def test_commits_from_zero_are_preferred_to_a_checkpoint() -> None:
    log = names(*(f"{v:020d}.json" for v in range(4)), f"{2:020d}.checkpoint.parquet")
    assert plan(log, 3).start is None and plan(log, 3).commits == (0, 1, 2, 3)


def test_a_checkpoints_adds_then_the_later_commits() -> None:
    how = plan(names(f"{2:020d}.checkpoint.parquet", f"{2:020d}.json", f"{3:020d}.json"))
    files = table_files(reader([b"", b"", b"", commit(remove("a.parquet"), add("c.parquet"))]),
                        how, lambda parts: [{"path": "a.parquet"}, {"path": "b%20x.parquet"}])
    assert files == ["_delta_log/00000000000000000002.checkpoint.parquet", commit_name(3),
                     "b x.parquet", "c.parquet"]


def test_only_a_v2_checkpoint_is_refused_by_name() -> None:
    with pytest.raises(DeltaError, match="v2 checkpoint"):
        plan([f"{3:020d}.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.json"])

