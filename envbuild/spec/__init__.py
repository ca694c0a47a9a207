"""The spec: what the user wants, read from envbuild.toml or [tool.envbuild] in pyproject.toml."""

from envbuild.spec.load import find_spec, load_spec, parse_spec
from envbuild.spec.model import DataSpec, ImageSpec, ModelSpec, Spec

__all__ = ["DataSpec", "ImageSpec", "ModelSpec", "Spec", "find_spec", "load_spec", "parse_spec"]
