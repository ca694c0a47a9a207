"""Replaying a Delta Lake log to the files of one version (envbuild/data/delta.py)."""

from __future__ import annotations

import json

import pytest

from envbuild.data.delta import DeltaError, commit_name, latest_version, table_files


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


def test_each_version_is_the_replay_of_its_commits() -> None:
    assert table_files(reader(LOG), 0) == [commit_name(0), "a.parquet", "b.parquet"]
    # URL-encoded in the log, as it is on disk: "p=x y/c.parquet"
    assert table_files(reader(LOG), 1) == [commit_name(0), commit_name(1), "a.parquet",
                                           "b.parquet", "p=x y/c.parquet"]
    assert table_files(reader(LOG), 2) == [commit_name(0), commit_name(1), commit_name(2),
                                           "b.parquet", "d.parquet"]
    assert commit_name(2) == "_delta_log/00000000000000000002.json"


def test_a_file_removed_and_added_again_is_in() -> None:
    log = [commit(add("a.parquet")), commit(remove("a.parquet")), commit(add("a.parquet"))]
    assert "a.parquet" not in table_files(reader(log), 1)
    assert "a.parquet" in table_files(reader(log), 2)


def test_the_latest_version_is_the_end_of_the_unbroken_run_of_commits() -> None:
    names = [commit_name(v).split("/")[1] for v in (0, 1, 2, 4)]
    assert latest_version(names + ["_last_checkpoint", "00000000000000000001.crc"]) == 2
    with pytest.raises(DeltaError, match="starts at version 10"):
        latest_version(["00000000000000000010.json", "00000000000000000010.checkpoint.parquet"])
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
        table_files(reader([commit(action)]), 0)


def test_an_inline_deletion_vector_is_in_the_log_and_fine() -> None:
    log = [commit(add("x.parquet", deletionVector={"storageType": "i", "pathOrInlineDv": "wi5b="}))]
    assert table_files(reader(log), 0) == [commit_name(0), "x.parquet"]


def test_a_broken_commit_names_its_line() -> None:
    with pytest.raises(DeltaError, match=r"00000000000000000000\.json line 2: not JSON"):
        table_files(reader([commit(add("a")) + b"{oops\n"]), 0)
    with pytest.raises(DeltaError, match="does not exist"):
        table_files(reader(LOG), -1)
