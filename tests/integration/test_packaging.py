"""The built wheel is a working envbuild, templates included."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_wheel_installs_into_a_fresh_venv_and_renders_templates(tmp_path: Path) -> None:
    from envbuild.lock.resolvers import uv_binary

    uv = uv_binary()
    dist = tmp_path / "dist"
    subprocess.run([uv, "build", "--wheel", "--out-dir", str(dist), str(REPO)], check=True,
                   capture_output=True, timeout=600)
    wheel = next(dist.glob("envbuild-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "envbuild/templates/envbuild.toml.j2" in names
    assert not any(n.startswith("templates/") for n in names)  # nothing at site-packages' top

    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--python", sys.executable, str(venv)], check=True,
                   capture_output=True, timeout=300)
    subprocess.run([uv, "pip", "install", "--python", str(venv / "bin" / "python"), str(wheel)],
                   check=True, capture_output=True, timeout=600)

    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("six==1.16.0\n")
    result = subprocess.run([str(venv / "bin" / "envbuild"), "init", "--name", "wheeltest"],
                            cwd=project, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    spec = (project / "envbuild.toml").read_text()
    assert spec.startswith("# envbuild.toml: what this project wants.")
    assert 'name = "wheeltest"' in spec
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import envbuild.templating as t; print(t.templates_dir())"],
        capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    assert where.startswith(str(venv)), where  # the templates came from the wheel
    result = subprocess.run([str(venv / "bin" / "envbuild"), "lock", "--json"], cwd=project,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    # requirements.txt is the user's input here: the derived file goes beside it.
    assert (project / "requirements.txt").read_text() == "six==1.16.0\n"
    assert "--hash=sha256:" in (project / "requirements.lock.txt").read_text()
    check = subprocess.run([str(venv / "bin" / "envbuild"), "lock", "--check"], cwd=project,
                           capture_output=True, text=True, timeout=120, check=False)
    assert check.returncode == 0, check.stderr
