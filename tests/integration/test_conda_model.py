"""[model] environment = "conda": an MLflow model logged with a conda.yaml is the environment.

The model is a tiny pyfunc logged into a sqlite store with a conda.yaml that names the tests'
local channel; `envbuild lock` downloads conda.yaml from the locked version, checks it against
the model digest, and locks it like an environment.yml.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conda import require_module

require_module("rattler")
require_module("conda_lock")
require_module("mlflow")

from envbuild.conda.lockfile import parse_conda_lock
from tests.conda.channel import build_channel
from tests.conda.fixtures import PACKAGES

HERE = Path(__file__).resolve().parent
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "BENTOML_DO_NOT_TRACK": "true"}


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=600, check=False,
                          cwd=cwd, env={**os.environ, **QUIET})


def test_the_models_conda_yaml_is_locked(tmp_path: Path) -> None:
    channel = build_channel(tmp_path / "channel", list(PACKAGES))
    project = tmp_path / "project"
    project.mkdir()
    logged = run(sys.executable, str(HERE.parent / "conda" / "log_model.py"),
                 f"sqlite:///{project}/mlflow.db", channel.as_uri(), cwd=project)
    assert logged.returncode == 0, logged.stderr[-3000:]
    (project / "envbuild.toml").write_text(
        'name = "echo"\n[model]\nuri = "models:/echo/1"\ntracking_uri = "sqlite:///mlflow.db"\n'
        'environment = "conda"\n[conda]\nplatforms = ["linux-64"]\n')
    lock = run(sys.executable, "-m", "envbuild.cli.main", "-C", str(project), "lock")
    assert lock.returncode == 0, lock.stderr
    pinned = tomllib.loads((project / "envbuild.lock").read_text())
    assert pinned["conda"]["environment"] == "models:/echo/1/conda.yaml"
    conda = parse_conda_lock((project / "conda-lock.yml").read_bytes())
    assert sorted(p.name for p in conda.packages) == ["tinylib", "tinytool"]
    assert conda.sources == ("models:/echo/1/conda.yaml",)
    reqs = (project / "requirements.txt").read_text()
    assert "six==1.16.0" in reqs and "--hash=sha256:" in reqs
    check = run(sys.executable, "-m", "envbuild.cli.main", "-C", str(project), "lock", "--check")
    assert check.returncode == 0, check.stderr
