"""`envbuild data import-delta` on Delta Lake tables written by the real delta-rs (deltalake).

Which files make up a version is checked against deltalake's own answer
(`DeltaTable(path, version=N).files()`), and what is restored is read back through deltalake
at that version: the rows must be the ones written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.integration.test_data_s3 import envbuild
from tests.lockfiles import write_placeholder_lock

pytestmark = pytest.mark.integration

# delta-rs aborts while the interpreter shuts down ("terminate called without an active
# exception"): each script ends with os._exit once its output is flushed.
PRELUDE = """
import json, os, sys
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
table = sys.argv[1]
def done(value):
    print(json.dumps(value), flush=True)
    os._exit(0)
"""


def delta(script: str, table: Path) -> object:
    """Run `script` (after PRELUDE) in a fresh interpreter; the value it passed to done()."""
    if os.environ.get("CI") != "true":  # in CI a missing deltalake fails the run below
        pytest.importorskip("deltalake")
    proc = subprocess.run([sys.executable, "-c", PRELUDE + script, str(table)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def write(table: Path, rows: list[int], mode: str) -> None:
    delta(f"""
write_deltalake(table, pa.table({{"id": {rows!r}, "part": ["a b" if i % 2 else "c" for i in {rows!r}]}}),
                mode={mode!r}, partition_by=["part"])
done(None)
""", table)


def rows(table: Path, version: int) -> list[int]:
    return delta(f"done(sorted(DeltaTable(table, version={version}).to_pyarrow_table()"
                 f".column('id').to_pylist()))", table)  # type: ignore[return-value]


def files(table: Path, version: int) -> list[str]:
    """Version N's data files, as deltalake lists them (relative, decoded)."""
    return delta(f"""
from urllib.parse import unquote, urlparse
uris = DeltaTable(table, version={version}).file_uris()
done(sorted(os.path.relpath(unquote(urlparse(u).path) if "://" in u else u, table) for u in uris))
""", table)  # type: ignore[return-value]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose data/events is a Delta table of three versions, partitioned by a value
    with a space (escaped in the directory name, and URL-encoded again in the log): 0 writes,
    1 appends, 2 overwrites."""
    p = tmp_path / "proj"
    p.mkdir()
    write_placeholder_lock(p)
    table = p / "data" / "events"
    write(table, [1, 2, 3], "append")
    write(table, [4, 5], "append")
    write(table, [9], "overwrite")
    return p


def lock_ref(project: Path) -> dict[str, object]:
    lock = tomllib.loads((project / "envbuild.lock").read_text())
    return lock["data"]["refs"]["data/events"]  # type: ignore[no-any-return]


def test_a_version_pins_its_commits_and_data_files_and_nothing_else(
        project: Path, tmp_path: Path) -> None:
    cache, table = tmp_path / "cache", project / "data" / "events"
    out = json.loads(envbuild(project, cache, "import-delta", "data/events", "--version", "1",
                              "--json").stdout)
    ref = out["refs"][0]
    assert ref["kind"] == "table" and ref["version"] == 1 and ref["source"] == "delta"
    pinned = files(table, 1)
    # delta-rs names the partition directory "part=a%20b" and the log says "part=a%2520b":
    # decoded once, as the protocol says (twice would give a space, and a missing file).
    assert any(f.startswith("part=a%20b/") for f in pinned)
    assert ref["files"] == len(pinned) + 2  # and the commits 0 and 1
    assert ref["size"] == sum((table / f).stat().st_size for f in pinned) + sum(
        (table / "_delta_log" / f"{v:020d}.json").stat().st_size for v in (0, 1))
    assert lock_ref(project) == {k: ref[k] for k in ("digest", "files", "kind", "origin",
                                                      "size", "source", "version")}

    # The table moves on: version 3 appends. Version 1's files are untouched: still ok.
    write(table, [7], "append")
    for command in ("status", "verify"):
        state = json.loads(envbuild(project, cache, command, "--json").stdout)
        assert state["ok"] is True, state

    # A byte of one of version 1's data files: verify names it, exit 7.
    victim = table / pinned[0]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 1
    os.chmod(victim, 0o644)
    victim.write_bytes(bytes(data))
    failed = envbuild(project, cache, "verify", check=False)
    assert failed.returncode == 7 and f"data/events/{pinned[0]}" in failed.stderr + failed.stdout
    assert "`envbuild data import-delta` pins a table's newest version" in failed.stderr

    # checkout --force keeps the edited bytes in the cache and puts version 1's back.
    envbuild(project, cache, "checkout", "--force")
    assert rows(table, 1) == [1, 2, 3, 4, 5]
    assert rows(table, 3) == [7, 9]  # later versions' files were left alone


def test_the_table_comes_back_from_a_remote_at_the_pinned_version(
        project: Path, tmp_path: Path) -> None:
    cache, table = tmp_path / "cache", project / "data" / "events"
    envbuild(project, cache, "import-delta", "data/events")  # the newest: version 2
    assert lock_ref(project)["version"] == 2
    remote = (tmp_path / "remote").as_uri()
    envbuild(project, cache, "push", "--remote", remote)
    shutil.rmtree(cache)
    shutil.rmtree(table)
    envbuild(project, cache, "pull", "--remote", remote)
    out = json.loads(envbuild(project, cache, "checkout", "--json").stdout)
    restored = sorted(p.removeprefix("data/events/") for p in out["written"])
    assert restored == sorted(files(table, 2) + [f"_delta_log/{v:020d}.json" for v in (0, 1, 2)])
    assert rows(table, 2) == [9]
    verify = json.loads(envbuild(project, cache, "verify", "--json").stdout)
    assert verify["ok"] is True


def test_what_cannot_be_pinned_is_refused_and_the_lock_kept(
        project: Path, tmp_path: Path) -> None:
    cache, table = tmp_path / "cache", project / "data" / "events"
    lock = (project / "envbuild.lock").read_bytes()

    def refused(*args: str) -> str:
        proc = envbuild(project, cache, "import-delta", *args, check=False)
        assert proc.returncode != 0, proc.stdout
        assert proc.stderr.count("error:") == 1 and proc.stderr.count("hint:") == 1, proc.stderr
        assert (project / "envbuild.lock").read_bytes() == lock
        return proc.stderr

    assert "the newest is 2" in refused("data/events", "--version", "5")
    (project / "data" / "plain").mkdir()
    assert "not a Delta table" in refused("data/plain")
    # A data file of version 1 deleted (as a vacuum would): version 1 cannot be pinned.
    gone = files(table, 1)[0]
    (table / gone).unlink()
    assert "missing" in refused("data/events", "--version", "1")
    # The log's first commits cleaned up: only a checkpoint could tell version 0.
    (table / "_delta_log" / f"{0:020d}.json").unlink()
    assert "checkpoint" in refused("data/events")


def test_a_table_whose_early_commits_were_cleaned_up_is_read_from_its_checkpoint(
        project: Path, tmp_path: Path) -> None:
    """delta-rs writes a checkpoint at version 2; the commits up to it are then deleted, as a
    log cleanup does. Version 3 is the checkpoint's files plus commit 3."""
    cache, table = tmp_path / "cache", project / "data" / "events"
    delta("DeltaTable(table).create_checkpoint(); done(None)", table)
    write(table, [7, 8], "append")  # version 3
    log = table / "_delta_log"
    checkpoint = sorted(p.name for p in log.glob("*.checkpoint*.parquet"))
    assert checkpoint == [f"{2:020d}.checkpoint.parquet"], checkpoint
    for v in (0, 1, 2):
        (log / f"{v:020d}.json").unlink()
    assert rows(table, 3) == [7, 8, 9]  # deltalake reads it so too

    out = json.loads(envbuild(project, cache, "import-delta", "data/events", "--json").stdout)
    ref = out["refs"][0]
    assert ref["version"] == 3
    listing = json.loads(envbuild(project, cache, "verify", "--json").stdout)
    assert listing["ok"] is True
    expected = sorted(files(table, 3) + [f"_delta_log/{checkpoint[0]}", f"_delta_log/{3:020d}.json"])
    shutil.rmtree(table)
    written = json.loads(envbuild(project, cache, "checkout", "--json").stdout)["written"]
    assert sorted(p.removeprefix("data/events/") for p in written) == expected
    assert rows(table, 3) == [7, 8, 9]  # read back from the checkpoint and commit 3 alone
    refused = envbuild(project, cache, "import-delta", "data/events", "--version", "1",
                       check=False)
    assert refused.returncode != 0 and "cannot be read" in refused.stderr
