"""argv of the Nix commands envbuild runs, and what a user sees when Nix fails or is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from envbuild.cli.main import main
from envbuild.errors import IntegrityError, ToolError
from envbuild.generate import nix_tool
from envbuild.generate.nix_tool import (
    flake_ref,
    nix_build_argv,
    nix_eval_argv,
    nix_show_argv,
    parse_argv,
    run_nix,
)
from envbuild.tools import Result


def test_argv(tmp_path: Path) -> None:
    ref = f"path:{tmp_path.resolve()}"
    features = ["--extra-experimental-features", "nix-command flakes"]
    assert flake_ref(tmp_path, "packages.x86_64-linux.data") == ref + "#packages.x86_64-linux.data"
    assert nix_build_argv(tmp_path, "packages.x86_64-linux.data") == [
        "nix", "build", "--no-link", "--no-write-lock-file", "--json", *features,
        ref + "#packages.x86_64-linux.data"]
    assert nix_eval_argv(tmp_path, "envbuild.wheels", options={"sandbox": "false",
                                                               "build-users-group": ""},
                         override_nixpkgs=tmp_path / "np") == [
        "nix", "eval", "--no-write-lock-file", "--json", *features,
        "--option", "build-users-group", "", "--option", "sandbox", "false",
        "--override-input", "nixpkgs", f"path:{(tmp_path / 'np').resolve()}",
        ref + "#envbuild.wheels"]
    assert nix_eval_argv(tmp_path, "x", json=False)[3] == "--raw"
    assert nix_show_argv(tmp_path)[:5] == ["nix", "flake", "show", "--no-write-lock-file", "--json"]
    assert parse_argv([Path("a.nix"), Path("b.nix")]) == ["nix-instantiate", "--parse", "a.nix", "b.nix"]


class FakeRunner:
    def __init__(self, returncode: int, stderr: str = "", stdout: str = "") -> None:
        self.result = (returncode, stdout, stderr)
        self.argv: list[str] = []

    def run(self, argv: list[str], **_: object) -> Result:
        self.argv = list(argv)
        code, out, err = self.result
        return Result(argv=tuple(argv), returncode=code, stdout=out, stderr=err)


@pytest.fixture
def with_nix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nix_tool, "which", lambda name: "/usr/bin/" + name)


def test_hash_mismatch_is_an_integrity_error(with_nix: None) -> None:
    runner = FakeRunner(1, stderr="warning: x\nerror: hash mismatch in data/train.csv: expected "
                        "sha256:ab (envbuild.lock), found sha256:cd\n(use '--show-trace' ...)\n")
    with pytest.raises(IntegrityError) as err:
        run_nix(runner, ["nix", "build"], what="nix build")  # type: ignore[arg-type]
    assert err.value.message.startswith("hash mismatch in data/train.csv")
    assert err.value.exit_code == 7 and "restore it" in err.value.hint


def test_other_failures_are_tool_errors(with_nix: None) -> None:
    with pytest.raises(ToolError) as err:
        run_nix(FakeRunner(1, stderr="error: attribute 'x' missing"), ["nix", "eval"],  # type: ignore[arg-type]
                what="nix eval")
    assert err.value.exit_code == 6 and "attribute 'x' missing" in err.value.stderr_tail
    assert run_nix(FakeRunner(0, stdout="[]"), ["nix"], what="x") == "[]"  # type: ignore[arg-type]


def test_nix_not_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(nix_tool, "which", lambda name: None)
    assert main(["nix", "build", "data", "-C", str(tmp_path)]) == 6
    err = capsys.readouterr().err
    assert "error: nix is not installed" in err
    assert "hint: install Nix (Debian: `apt-get install nix-bin`" in err


def test_nix_generate_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    churn = Path(__file__).resolve().parents[2] / "examples" / "churn"
    for name in ("envbuild.lock", "pylock.toml"):
        (tmp_path / name).write_bytes((churn / name).read_bytes())
    assert main(["nix", "generate", "-C", str(tmp_path)]) == 0
    assert "flake.nix, flake.lock" in capsys.readouterr().err
    assert main(["nix", "generate", "-C", str(tmp_path), "--nixpkgs-rev", "abc"]) == 1
    assert "go together" in capsys.readouterr().err
    assert main(["-C", str(tmp_path), "nix", "generate", "--json"]) == 0
    assert '"changed": []' in capsys.readouterr().out
