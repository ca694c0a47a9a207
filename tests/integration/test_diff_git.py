"""`envbuild diff REV REV` reads both locks from real git history."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CHURN = Path(__file__).resolve().parents[2] / "examples" / "churn"


def test_diff_between_two_git_revisions(tmp_path: Path, tool: Callable[[str], str]) -> None:
    git = tool("git")
    project = tmp_path / "churn"
    project.mkdir()
    (project / "envbuild.toml").write_text('name = "churn"\nrequirements = ["requirements.in"]\n')
    (project / "requirements.in").write_text("scikit-learn\npandas==2.3.2\n")

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=project, capture_output=True, text=True, timeout=600,
                              check=False)

    envbuild = (sys.executable, "-m", "envbuild.cli.main")
    assert run(*envbuild, "lock").returncode == 0
    for argv in (("init", "-q"), ("add", "."), ("-c", "user.name=t", "-c", "user.email=t@t",
                                                  "commit", "-qm", "one")):
        assert run(git, *argv).returncode == 0
    (project / "requirements.in").write_text("scikit-learn\npandas==2.3.3\n")
    assert run(*envbuild, "lock").returncode == 0
    result = run(*envbuild, "diff", "HEAD", str(project), "--json", "--exit-code")
    assert result.returncode == 1, result.stderr
    changes = json.loads(result.stdout)["changes"]
    assert [(c["key"], c["kind"], c["old"], c["new"]) for c in changes] == [
        ("pandas", "upgraded", "2.3.2", "2.3.3")]
    assert run(git, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two").returncode == 0
    text = run(*envbuild, "diff", "HEAD~1", "HEAD")
    assert text.returncode == 0 and "pandas upgraded 2.3.2 -> 2.3.3" in text.stdout
