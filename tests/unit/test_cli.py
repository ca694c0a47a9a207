"""The CLI's contract: one error line, one hint line, fixed exit codes, no traceback unless -v."""

from __future__ import annotations

import argparse
import errno
import json
from pathlib import Path
from typing import Any

import pytest

from envbuild.cli.main import build_parser, main
from envbuild.lock import service
from envbuild.spec import load_spec

GOLDEN = Path(__file__).parent.parent / "golden" / "basic"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error(err: str) -> None:
    lines = err.splitlines()
    assert sum(line.startswith("error: ") for line in lines) == 1, err
    assert sum(line.startswith("hint: ") for line in lines) == 1, err
    assert "Traceback" not in err


def test_spec_error_exit_code_and_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "envbuild.toml").write_text('name = "x"\n[image]\nbsae = "y"\n')
    code, _, err = run(capsys, "-C", str(tmp_path), "lock")
    assert code == 3
    assert_one_error(err)
    assert "error: envbuild.toml: image.bsae: unknown key 'bsae'" in err


def test_verbose_shows_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "envbuild.toml").write_text("name = \n")
    code, _, err = run(capsys, "lock", "-C", str(tmp_path), "-v")
    assert code == 3
    assert "Traceback" in err


def test_json_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "-C", str(tmp_path), "lock", "--json")
    assert code == 3
    payload = json.loads(out)
    assert payload["ok"] is False and payload["exit_code"] == 3 and payload["hint"]


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert "example" in out and "exit codes" in out, name


def test_the_command_table_matches_what_the_modules_register() -> None:
    """main builds one module's parsers per run, found in COMMAND_MODULE: a command added to a
    module but not to the table would still work (the whole parser), only slower; one in the
    table under the wrong module would vanish. Both show here."""
    import importlib

    from envbuild.cli.main import COMMAND_MODULE, COMMAND_MODULES

    registered: dict[str, str] = {}
    for module in COMMAND_MODULES:
        def record(name: str, *_: object, module: str = module) -> argparse.ArgumentParser:
            registered[name] = module
            return argparse.ArgumentParser(add_help=False)

        importlib.import_module(module).register(record)
    assert registered == COMMAND_MODULE


@pytest.mark.parametrize("argv", [["-C", "x", "lock", "--check"], ["data", "status", "--json"],
                                  ["--project=x", "-v", "nix", "generate"], ["serve"]])
def test_one_command_parses_as_with_the_whole_parser(argv: list[str]) -> None:
    from envbuild.cli.main import command_name

    narrow = vars(build_parser(argv).parse_args(argv))
    whole = vars(build_parser().parse_args(argv))
    assert narrow == whole
    assert command_name(argv) == next(a for a in argv if not a.startswith("-") and a != "x")


def test_show_without_lock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-C", str(tmp_path), "show")
    assert code == 4
    assert_one_error(err)


def test_init_writes_a_spec_lock_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "My Project"
    project.mkdir()
    (project / "requirements.txt").write_text("six\n")
    code, _, err = run(capsys, "-C", str(project), "init", "--base", "127.0.0.1:5000/py:3.11")
    assert code == 0, err
    spec = load_spec(project)
    assert spec.name == "my-project"
    assert spec.requirements == ("requirements.txt",)
    assert spec.image.base == "127.0.0.1:5000/py:3.11"
    code, _, err = run(capsys, "-C", str(project), "init")
    assert code == 3 and "--force" in err
    code, _, err = run(capsys, "-C", str(project), "init", "--force", "--python", "3.12")
    assert code == 0 and "Python side only" in err
    assert load_spec(project).python == "3.12" and load_spec(project).image.base is None


def test_init_prefers_requirements_in_then_pyproject(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["six"]\n')
    assert run(capsys, "-C", str(tmp_path), "init", "--name", "p")[0] == 0
    assert load_spec(tmp_path).requirements == ("pyproject.toml",)


def test_init_without_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-C", str(tmp_path), "init")
    assert code == 3
    assert_one_error(err)


def test_init_rejects_bad_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "requirements.in").write_text("six\n")
    code, _, err = run(capsys, "-C", str(tmp_path), "init", "--base", "Bad Image")
    assert code == 3 and "image.base" in err
    assert not (tmp_path / "envbuild.toml").exists()


# ---- the lock flow with a fake resolver (the real ones run in tests/integration) -------------


@pytest.fixture
def fake_resolver(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []

    def fake(backend: str, request: Any, runner: Any) -> list[dict[str, Any]]:
        calls.append((backend, request))
        wanted = {r.split(">")[0].split("=")[0] for r in request.requirements}
        candidates = json.loads((GOLDEN / "candidates.json").read_text())
        return [c for c in candidates if c["name"].lower().replace("_", "-") in wanted]

    monkeypatch.setattr(service, "resolve", fake)
    return calls


def project_with_reqs(tmp_path: Path) -> Path:
    (tmp_path / "envbuild.toml").write_text('name = "p"\nrequirements = ["requirements.in"]\n')
    (tmp_path / "requirements.in").write_text("numpy\nzipp\narm-helper\nquote-pkg\npywin32\n")
    return tmp_path


def test_lock_check_relock_cycle(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 fake_resolver: list[Any]) -> None:
    project = project_with_reqs(tmp_path)
    code, out, err = run(capsys, "-C", str(project), "lock", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["resolved"] is True and result["packages"] == 4
    assert sorted(result["written"]) == ["envbuild.lock", "pylock.toml", "requirements.txt"]
    assert any("Python side only" in n for n in result["notes"])
    before = {p.name: p.read_bytes() for p in project.iterdir()}

    code, out, _ = run(capsys, "-C", str(project), "lock", "--json")
    assert code == 0 and json.loads(out)["resolved"] is False
    assert len(fake_resolver) == 1  # the second run resolved nothing
    assert {p.name: p.read_bytes() for p in project.iterdir()} == before

    assert run(capsys, "-C", str(project), "lock", "--check")[0] == 0
    (project / "requirements.in").write_text("numpy\nzipp\nsix\n")  # a new requirement
    code, _, err = run(capsys, "-C", str(project), "lock", "--check")
    assert code == 5
    assert_one_error(err)
    assert "requirements.in" in err
    assert {p.name: p.read_bytes() for p in project.iterdir() if p.name != "requirements.in"} == {
        k: v for k, v in before.items() if k != "requirements.in"}  # --check wrote nothing

    assert run(capsys, "-C", str(project), "lock")[0] == 0
    assert len(fake_resolver) == 2
    assert fake_resolver[1][1].previous_pylock is not None  # pins kept as preferences
    assert run(capsys, "-C", str(project), "lock", "--check")[0] == 0
    assert run(capsys, "-C", str(project), "lock", "--upgrade-package", "numpy")[0] == 0
    assert fake_resolver[2][1].upgrade_packages == ("numpy",)


def test_check_names_an_edited_generated_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              fake_resolver: list[Any]) -> None:
    project = project_with_reqs(tmp_path)
    assert run(capsys, "-C", str(project), "lock")[0] == 0
    with (project / "requirements.txt").open("a") as f:
        f.write("evil==1\n")
    code, _, err = run(capsys, "-C", str(project), "lock", "--check")
    assert code == 5 and "requirements.txt: edited after locking" in err


def test_check_without_lock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = project_with_reqs(tmp_path)
    code, _, err = run(capsys, "-C", str(project), "lock", "--check")
    assert code == 5 and "no envbuild.lock" in err


def test_full_disk_leaves_every_file_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               fake_resolver: list[Any],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    project = project_with_reqs(tmp_path)
    assert run(capsys, "-C", str(project), "lock")[0] == 0
    before = {p.name: p.read_bytes() for p in project.iterdir()}
    (project / "requirements.in").write_text("numpy\n")
    from envbuild import files

    real = files._write_temp
    def flaky(path: Path, data: bytes) -> Path:
        if path.name == "envbuild.lock":  # pylock.toml and requirements.txt are already staged
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(files, "_write_temp", flaky)
    code, _, err = run(capsys, "-C", str(project), "lock")
    assert code == 1 and "disk full" in err
    assert_one_error(err)
    after = {p.name: p.read_bytes() for p in project.iterdir()}
    assert after == {**before, "requirements.in": b"numpy\n"}  # no temp file left behind


def test_damaged_lock_is_replaced_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              fake_resolver: list[Any]) -> None:
    project = project_with_reqs(tmp_path)
    (project / "envbuild.lock").write_text("garbage = [\n")
    code, _, err = run(capsys, "-C", str(project), "lock")
    assert code == 0 and "replacing envbuild.lock" in err


def test_show(tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_resolver: list[Any]) -> None:
    project = project_with_reqs(tmp_path)
    assert run(capsys, "-C", str(project), "lock")[0] == 0
    code, out, _ = run(capsys, "-C", str(project), "show", "--json")
    data = json.loads(out)
    assert code == 0 and data["bundle"].startswith("sha256:")
    assert [p["name"] for p in data["packages"]] == ["arm-helper", "numpy", "quote-pkg", "zipp"]
    code, out, _ = run(capsys, "-C", str(project), "show")
    assert "numpy==2.3.4  [2 wheel(s)]" in out and data["bundle"] in out


def test_show_names_a_delta_table_refs_version(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               fake_resolver: list[Any]) -> None:
    from envbuild.data.refs import DataRef
    from envbuild.data.service import load_table, save_table

    project = project_with_reqs(tmp_path)
    assert run(capsys, "-C", str(project), "lock")[0] == 0
    lock, table = load_table(project)
    ref = DataRef(path="data/events", kind="table", digest="sha256:" + "c" * 64, size=10,
                  files=3, source="delta", origin="data/events/_delta_log", version=4)
    save_table(project, lock, table.with_refs([ref]))
    code, out, _ = run(capsys, "-C", str(project), "show")
    assert code == 0
    assert f"data        data/events  sha256:{'c' * 64}  (Delta table version 4)" in out
    code, out, _ = run(capsys, "-C", str(project), "show", "--json")
    assert json.loads(out)["data"]["refs"]["data/events"]["version"] == 4


def test_requirements_txt_input_is_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     fake_resolver: list[Any]) -> None:
    (tmp_path / "envbuild.toml").write_text('name = "p"\nrequirements = ["requirements.txt"]\n')
    (tmp_path / "requirements.txt").write_text("numpy\n")
    assert run(capsys, "-C", str(tmp_path), "lock")[0] == 0
    assert (tmp_path / "requirements.txt").read_text() == "numpy\n"
    assert "--hash=sha256:" in (tmp_path / "requirements.lock.txt").read_text()
    assert run(capsys, "-C", str(tmp_path), "lock", "--check")[0] == 0



def test_a_reader_that_goes_away_is_no_error(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`envbuild show | head -1`: the pipe closes while show still writes."""
    from envbuild.cli import commands

    def closed_pipe(args: Any) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(commands, "cmd_show", closed_pipe)
    assert main(["show"]) == 0
    assert "error" not in capsys.readouterr().err
