"""The CI files users copy name real commands and match the files they guard."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from envbuild.cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]


def test_pre_commit_hook_runs_a_real_command_on_the_right_files() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "envbuild-lock-check")
    argv = shlex.split(hook["entry"])
    assert argv[0] == "envbuild"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "lock" and args.check
    pattern = re.compile(hook["files"])
    for path in ("envbuild.toml", "envbuild.lock", "sub/requirements.in", "requirements-dev.txt",
                 "pyproject.toml", "pylock.toml"):
        assert pattern.search(path), path
    for path in ("train.py", "README.md", "data/requirements.csv"):
        assert not pattern.search(path), path


def test_github_workflow_commands_parse() -> None:
    workflow = yaml.safe_load((REPO / "examples" / "ci" / "github-actions.yml").read_text())
    runs = [step["run"] for job in workflow["jobs"].values() for step in job["steps"]
            if "run" in step and step["run"].startswith("envbuild ")]
    assert len(runs) == 2
    for run in runs:
        argv = shlex.split(run.split("||")[0])
        build_parser().parse_args(argv[1:])  # exits (fails the test) on a bad command line
