from __future__ import annotations

from pathlib import Path

import pytest

from envbuild.errors import SpecError
from envbuild.spec import Spec, load_spec, parse_spec
from envbuild.spec.model import DataSpec, ImageSpec, ModelSpec

FULL = """
name = "churn"
python = "3.11"
platforms = ["linux/amd64"]
requirements = ["requirements.in"]
index_url = "https://example.org/simple"
glibc = "2.28"
[image]
base = "127.0.0.1:5000/python:3.11"
name = "churn-img"
[model]
uri = "models:/churn@production"
tracking_uri = "sqlite:///mlflow.db"
[data]
paths = ["data/train.csv"]
"""


def test_full_spec_parses() -> None:
    spec = parse_spec(FULL)
    assert spec.name == "churn"
    assert spec.platforms == ("linux/amd64",)
    assert spec.image == ImageSpec(base="127.0.0.1:5000/python:3.11", name="churn-img")
    assert spec.model == ModelSpec(uri="models:/churn@production", tracking_uri="sqlite:///mlflow.db")
    assert spec.data == DataSpec(paths=("data/train.csv",))
    assert spec.image_name == "churn-img"


def test_defaults() -> None:
    spec = parse_spec('name = "x"\nrequirements = ["r.in"]\n')
    assert spec.python == "3.11"
    assert spec.platforms == ("linux/amd64", "linux/arm64")
    assert spec.image_name == "x"
    assert spec.model is None


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('name = "x"\nfoo = 1\n', "foo", "unknown key"),
        ('name = "x"\n[image]\nbsae = "y"\n', "image.bsae", "unknown key"),
        ('name = "x"\npython = 3.11\n', "python", "expected a string"),
        ('name = "x"\nplatforms = ["windows/amd64"]\n', "platforms", "not supported"),
        ('name = "x"\nplatforms = "linux/amd64"\n', "platforms", "list of strings"),
        ('name = "X Y"\n', "name", "bundle name"),
        ('python = "3.11"\n', "name", "missing required key"),
        ('name = "x"\nimage = 3\n', "image", "expected a table"),
        ('name = "x"\n[model]\nuri = "runs:/abc/model"\n', "model.uri", "model URI"),
        ('name = "x"\n[model]\ntracking_uri = "sqlite:///m.db"\n', "model.uri", "missing"),
        ('name = "x"\nplatforms = ["linux/amd64", "linux/amd64"]\n', "platforms", "repeats"),
    ],
)
def test_bad_spec_names_key(text: str, key: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text, file="envbuild.toml")
    assert info.value.key == key
    assert words in info.value.message
    assert info.value.message.startswith(f"envbuild.toml: {key}: ")
    assert info.value.hint


def test_malformed_toml() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec('name = "x\n')
    assert "not valid TOML" in info.value.message
    assert "line 1" in info.value.message


def test_pyproject_section_key_paths() -> None:
    text = '[project]\nname = "p"\n[tool.envbuild]\nname = "p"\nbogus = 1\n'
    with pytest.raises(SpecError) as info:
        parse_spec(text, file="pyproject.toml", section="tool.envbuild")
    assert info.value.key == "tool.envbuild.bogus"


def test_pyproject_defaults_to_its_own_dependencies() -> None:
    spec = parse_spec('[tool.envbuild]\nname = "p"\n', file="pyproject.toml", section="tool.envbuild")
    assert spec.requirements == ("pyproject.toml",)
    assert spec.key("requirements") == "tool.envbuild.requirements"


def test_missing_requirement_file(tmp_path: Path) -> None:
    (tmp_path / "envbuild.toml").write_text('name = "x"\nrequirements = ["nope.in"]\n')
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert info.value.key == "requirements[0]"
    assert "nope.in" in info.value.message


def test_no_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert "envbuild init" in info.value.hint


def test_spec_round_trip() -> None:
    spec = parse_spec(FULL)
    assert Spec.from_dict(spec.to_dict()) == spec
    for part in (spec.image, spec.data):
        assert type(part).from_dict(part.to_dict()) == part
    assert spec.model is not None
    assert ModelSpec.from_dict(spec.model.to_dict()) == spec.model
