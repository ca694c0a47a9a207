from __future__ import annotations

from pathlib import Path

import pytest

from envbuild.errors import SpecError
from envbuild.spec import parse_spec
from envbuild.spec.requirements import read_requirement_set


def spec_for(*sources: str) -> object:
    return parse_spec(f'name = "x"\nrequirements = {list(sources)!r}\n'.replace("'", '"'))


def test_requirements_file_with_includes_hashes_and_comments(tmp_path: Path) -> None:
    (tmp_path / "base.in").write_text("Requests>=2  # http\n")
    (tmp_path / "requirements.in").write_text(
        "# top\n-r base.in\nPandas>=2 \\\n    ; python_version >= '3.10'\n"
        "numpy==2.0 --hash=sha256:abc\n\n"
    )
    reqs = read_requirement_set(tmp_path, spec_for("requirements.in"))
    assert reqs.requirements == (
        "numpy==2.0",
        'pandas>=2; python_version >= "3.10"',
        "requests>=2",
    )
    assert reqs.files == ("base.in", "requirements.in")


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("-e .", "not supported"),
        ("--index-url https://x/simple", "not supported"),
        ("numpy>>2", "invalid requirement"),
        ("pkg @ https://example.org/pkg.whl", "direct URL"),
        ("--frobnicate", "unknown option"),
    ],
)
def test_bad_requirement_lines_name_file_and_line(tmp_path: Path, line: str, words: str) -> None:
    (tmp_path / "requirements.in").write_text(f"six\n{line}\n")
    with pytest.raises(SpecError) as info:
        read_requirement_set(tmp_path, spec_for("requirements.in"))
    assert "requirements.in:2:" in info.value.message
    assert words in info.value.message
    assert info.value.key == "requirements[0]"


def test_pep621(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\nversion = "1"\ndependencies = ["scikit-learn>=1.5", "Pandas"]\n'
    )
    reqs = read_requirement_set(tmp_path, spec_for("pyproject.toml"))
    assert reqs.requirements == ("pandas", "scikit-learn>=1.5")
    assert reqs.files == ("pyproject.toml",)


def test_poetry_dependencies_through_poetry_core(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.poetry]\nname = "p"\nversion = "1.0"\ndescription = ""\nauthors = []\n'
        '[tool.poetry.dependencies]\npython = "^3.11"\npandas = "^2.2"\n'
        'requests = { version = "~2.31", optional = true }\n'
    )
    reqs = read_requirement_set(tmp_path, spec_for("pyproject.toml"))
    assert reqs.requirements == ("pandas<3.0,>=2.2",)


def test_empty_requirements(tmp_path: Path) -> None:
    (tmp_path / "requirements.in").write_text("# nothing\n")
    with pytest.raises(SpecError, match="name no package"):
        read_requirement_set(tmp_path, spec_for("requirements.in"))


def test_requirement_files_match_what_the_parser_reads(tmp_path: Path) -> None:
    from envbuild.spec.sources import requirement_files

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "more.in").write_text("six\n-r ../base.in\n")
    (tmp_path / "base.in").write_text("numpy  # comment\n")
    (tmp_path / "requirements.in").write_text("-r sub/more.in\n-r base.in\npandas\n")
    spec = spec_for("requirements.in")
    assert requirement_files(tmp_path, spec) == read_requirement_set(tmp_path, spec).files
    assert requirement_files(tmp_path, spec) == ("base.in", "requirements.in", "sub/more.in")
