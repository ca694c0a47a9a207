"""The Jinja environment for Nix templates: envbuild's environment plus the Nix filters.

Every value a Nix template interpolates goes through `nix_string` (or `nix_attr` for an
attribute name); both live in nix_syntax and are tested with quotes, `${`, backslashes and
newlines. An overlay keeps the shared environment in envbuild.templating untouched.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from envbuild.generate.nix_syntax import nix_attr, nix_string
from envbuild.templating import environment


def _nix_bool(value: bool) -> str:
    if not isinstance(value, bool):
        raise TypeError(f"nix_bool takes a bool, not {value!r}")
    return "true" if value else "false"


def _nix_int(value: int) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"nix_int takes an int, not {value!r}")
    return str(value)


@cache
def nix_environment() -> jinja2.Environment:
    env = environment().overlay()
    env.filters = {**env.filters, "nix_string": nix_string, "nix_attr": nix_attr,
                   "nix_bool": _nix_bool, "nix_int": _nix_int}
    return env


def render_nix(template: str, **context: Any) -> bytes:
    text = nix_environment().get_template(template).render(**context)
    return (text.rstrip("\n") + "\n").encode()
