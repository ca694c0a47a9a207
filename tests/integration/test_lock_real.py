"""`envbuild lock` with the real resolvers (uv, pip-tools) against the real package index."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHURN = REPO / "examples" / "churn"


def envbuild(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "envbuild.cli.main", "-C", str(project), *args],
                          capture_output=True, text=True, timeout=900, check=False)


def snapshot(project: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(project.iterdir()) if p.is_file()}


def write_project(tmp_path: Path, requirements: str, extra: str = "") -> Path:
    (tmp_path / "envbuild.toml").write_text(
        f'name = "t"\npython = "3.11"\nrequirements = ["requirements.in"]\n{extra}')
    (tmp_path / "requirements.in").write_text(requirements)
    return tmp_path


@pytest.fixture
def churn(tmp_path: Path) -> Path:
    """The example's spec, requirements and code, without its [model] table: locking a model
    needs the trained MLflow store, which tests/integration/test_model_real.py covers."""
    import tomlkit

    project = tmp_path / "churn"
    shutil.copytree(CHURN / "app", project / "app")
    shutil.copytree(CHURN / "data", project / "data")  # the spec's [data] paths must exist
    shutil.copy(CHURN / "requirements.in", project / "requirements.in")
    spec = tomlkit.parse((CHURN / "envbuild.toml").read_text())
    assert "model" in spec  # if the example drops its model, drop this fixture's edit too
    del spec["model"]
    (project / "envbuild.toml").write_text(tomlkit.dumps(spec))
    return project


def test_churn_lock_has_both_architectures_and_repeats_byte_for_byte(churn: Path) -> None:
    first = envbuild(churn, "lock", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["resolved"] is True
    pylock = tomllib.loads((churn / "pylock.toml").read_text())
    names = {p["name"] for p in pylock["packages"]}
    assert {"scikit-learn", "pandas", "mlflow-skinny", "numpy", "scipy"} <= names
    compiled = 0
    for pkg in pylock["packages"]:
        wheels = [w["name"] for w in pkg["wheels"]]
        assert all(len(w["hashes"]["sha256"]) == 64 and w["url"].startswith("https://")
                   for w in pkg["wheels"])
        if not any(w.endswith("-none-any.whl") for w in wheels):
            compiled += 1
            assert any("manylinux" in w and w.endswith("_x86_64.whl") for w in wheels), pkg["name"]
            assert any("manylinux" in w and w.endswith("_aarch64.whl") for w in wheels), pkg["name"]
    assert compiled >= 4  # numpy, scipy, scikit-learn, pandas at least
    requirements = (churn / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements and "--hash=sha256:" in requirements

    before = snapshot(churn)
    second = envbuild(churn, "lock", "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["resolved"] is False  # nothing resolved again
    assert snapshot(churn) == before

    # An explicit re-resolve with the same pins gives the same bytes too.
    again = envbuild(churn, "lock", "--upgrade-package", "pandas")
    assert again.returncode == 0, again.stderr
    assert snapshot(churn) == before

    for text in (CHURN / "envbuild.lock", churn / "envbuild.lock"):
        assert str(REPO) not in text.read_text() and str(churn) not in text.read_text()


def test_check_names_the_edited_file_and_relock_fixes_it(churn: Path) -> None:
    assert envbuild(churn, "lock").returncode == 0
    assert envbuild(churn, "lock", "--check").returncode == 0
    with (churn / "requirements.in").open("a") as f:
        f.write("joblib\n")
    before = snapshot(churn)
    check = envbuild(churn, "lock", "--check")
    assert check.returncode == 5
    assert "requirements.in" in check.stderr
    assert snapshot(churn) == before
    assert envbuild(churn, "lock").returncode == 0
    assert envbuild(churn, "lock", "--check").returncode == 0


def test_uv_and_pip_tools_give_the_same_pylock(tmp_path: Path) -> None:
    reqs = "requests==2.32.3\nurllib3==2.2.3\nidna==3.10\ncertifi==2024.8.30\ncharset-normalizer==3.4.0\n"
    uv_dir = write_project(tmp_path / "uv", reqs) if (tmp_path / "uv").mkdir() is None else None
    pt_dir = write_project(tmp_path / "pt", reqs) if (tmp_path / "pt").mkdir() is None else None
    assert uv_dir and pt_dir
    uv = envbuild(uv_dir, "lock", "--resolver", "uv")
    assert uv.returncode == 0, uv.stderr
    pt = envbuild(pt_dir, "lock", "--resolver", "pip-tools")
    assert pt.returncode == 0, pt.stderr
    assert (uv_dir / "pylock.toml").read_bytes() == (pt_dir / "pylock.toml").read_bytes()
    assert (uv_dir / "requirements.txt").read_bytes() == (pt_dir / "requirements.txt").read_bytes()
    uv_lock = tomllib.loads((uv_dir / "envbuild.lock").read_text())
    pt_lock = tomllib.loads((pt_dir / "envbuild.lock").read_text())
    assert uv_lock["bundle"]["id"] == pt_lock["bundle"]["id"]
    assert (uv_lock["inputs"]["resolver"], pt_lock["inputs"]["resolver"]) == ("uv", "pip-tools")
    # The pip-tools lock remembers its backend: a no-change run resolves nothing.
    again = envbuild(pt_dir, "lock", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["resolved"] is False


@pytest.mark.parametrize("resolver", ["uv", "pip-tools"])
def test_unsatisfiable(tmp_path: Path, resolver: str) -> None:
    project = write_project(tmp_path, "six==1.16.0\nsix==1.15.0\n")
    result = envbuild(project, "lock", "--resolver", resolver)
    assert result.returncode == 4, result.stderr
    assert "cannot be satisfied" in result.stderr and "hint: " in result.stderr
    assert "six" in result.stderr
    assert not (project / "envbuild.lock").exists() and not (project / "pylock.toml").exists()


def test_unknown_package(tmp_path: Path) -> None:
    project = write_project(tmp_path, "envbuild-no-such-package-xyz==1.0\n")
    result = envbuild(project, "lock")
    assert result.returncode == 4
    assert "envbuild-no-such-package-xyz" in result.stderr


def test_sdist_only_package_is_named_with_the_platform(tmp_path: Path) -> None:
    # antlr4-python3-runtime 4.9.3 is published as an sdist only.
    project = write_project(tmp_path, "antlr4-python3-runtime==4.9.3\n")
    result = envbuild(project, "lock")
    assert result.returncode == 4, result.stderr
    assert "antlr4-python3-runtime 4.9.3 has no wheel for linux/amd64" in result.stderr
    assert "hint: " in result.stderr
    assert not (project / "pylock.toml").exists()


@pytest.mark.parametrize("resolver", ["uv", "pip-tools"])
def test_unreachable_index(tmp_path: Path, resolver: str) -> None:
    project = write_project(tmp_path, "six\n", 'index_url = "http://127.0.0.1:9/simple"\n')
    result = envbuild(project, "lock", "--resolver", resolver)
    assert result.returncode == 8, result.stderr
    assert "could not reach the package index http://127.0.0.1:9/simple" in result.stderr
    assert not (project / "envbuild.lock").exists()


def test_pep621_and_poetry_projects_lock(tmp_path: Path) -> None:
    pep621 = tmp_path / "pep621"
    pep621.mkdir()
    (pep621 / "pyproject.toml").write_text(
        '[project]\nname = "p"\nversion = "1"\ndependencies = ["six==1.16.0"]\n'
        '[tool.envbuild]\nname = "p"\n')
    result = envbuild(pep621, "lock")
    assert result.returncode == 0, result.stderr
    assert "six==1.16.0" in (pep621 / "requirements.txt").read_text()
    poetry = tmp_path / "poetry"
    poetry.mkdir()
    (poetry / "pyproject.toml").write_text(
        '[tool.poetry]\nname = "p"\nversion = "1.0"\ndescription = ""\nauthors = []\n'
        '[tool.poetry.dependencies]\npython = "^3.11"\nsix = "1.16.0"\n'
        '[tool.envbuild]\nname = "p"\n')
    result = envbuild(poetry, "lock")
    assert result.returncode == 0, result.stderr
    assert "six==1.16.0" in (poetry / "requirements.txt").read_text()
