"""The Jinja environment every generator renders through. Pure: templates in, bytes out.

Every interpolated value goes through a named filter that escapes for the target syntax.
"""

from __future__ import annotations

import json
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import jinja2


def templates_dir() -> Path:
    """Inside the installed wheel: envbuild/templates; in a checkout: the top-level templates/."""
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "templates"


def toml_string(value: str) -> str:
    """A TOML basic string. JSON's escapes are a subset of TOML's for these characters."""
    return json.dumps(value, ensure_ascii=False)


def sh_quote(value: str) -> str:
    return shlex.quote(value)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["toml_string"] = toml_string
    env.filters["sh_quote"] = sh_quote
    env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False)
    return env


def render(template: str, **context: Any) -> bytes:
    text = environment().get_template(template).render(**context)
    return (text.rstrip("\n") + "\n").encode()
