"""envbuild data remove: unpin refs; the working files and the cache keep their bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envbuild.data import service
from envbuild.lock.bundle import parse_lock
from tests.unit.test_data_service import ctx, project, run, table  # noqa: F401 (fixture)


def _pin_three(project: Path) -> None:  # noqa: F811 (the fixture's name)
    (project / "data" / "extra").mkdir()
    (project / "data" / "extra" / "c.txt").write_text("c\n")
    service.add(ctx(project), ["data/a.csv", "data/sub", "model.bin"])


def test_remove_unpins_a_ref_and_touches_no_file(project: Path) -> None:  # noqa: F811
    _pin_three(project)
    before_lock = parse_lock((project / "envbuild.lock").read_text())
    cache = Path(service.DataContext.open(project).cache.root)
    objects = sorted(p for p in cache.rglob("*") if p.is_file())
    files = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()
             and ".envbuild" not in p.parts and p.name != "envbuild.lock"}
    outcome = service.remove(ctx(project), ["model.bin"])
    assert [r.path for r in outcome.refs] == ["model.bin"]
    assert [r.path for r in table(project).refs] == ["data/a.csv", "data/sub"]
    after_lock = parse_lock((project / "envbuild.lock").read_text())
    assert after_lock.bundle_id == outcome.bundle != before_lock.bundle_id
    assert {p: p.read_bytes() for p in files} == files
    assert sorted(p for p in cache.rglob("*") if p.is_file()) == objects
    # The refs left still verify; re-adding the path pins the same digest as before.
    assert all(s.state == "ok" for s in service.check(ctx(project), rehash=True).states)
    again = service.add(ctx(project), ["model.bin"])
    assert again.bundle == before_lock.bundle_id


def test_remove_a_directory_holding_refs_unpins_them_all(project: Path) -> None:  # noqa: F811
    _pin_three(project)
    outcome = service.remove(ctx(project), ["data"])
    assert [r.path for r in outcome.refs] == ["data/a.csv", "data/sub"]
    assert [r.path for r in table(project).refs] == ["model.bin"]


@pytest.mark.parametrize(("path", "message"), [
    ("data/sub/b.bin", "lies inside the data ref 'data/sub'"),
    ("data/extra", "no data ref holds this path"),
    ("elsewhere.bin", "no data ref holds this path"),
])
def test_remove_refuses_what_is_not_a_ref(project: Path, path: str, message: str,  # noqa: F811
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _pin_three(project)
    lock = (project / "envbuild.lock").read_bytes()
    code, _, err = run(capsys, "data", "remove", path)
    assert code != 0 and f"error: {path}: {message}" in err and "hint:" in err, err
    assert (project / "envbuild.lock").read_bytes() == lock


def test_remove_cli_json(project: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    _pin_three(project)
    code, out, _ = run(capsys, "data", "remove", "--json", "data/sub")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True
    assert [r["path"] for r in doc["removed"]] == ["data/sub"]
    assert doc["bundle"] == parse_lock((project / "envbuild.lock").read_text()).bundle_id
    code, _, err = run(capsys, "data", "remove")
    assert code != 0 and "error: no paths given" in err
