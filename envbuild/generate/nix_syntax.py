"""Nix syntax for generated files: the one escaping function every interpolated string uses. Pure.

Nix's double-quoted strings treat `\\`, `"` and `${` specially; `\\X` stands for X itself except
`\\n`, `\\r` and `\\t`. Escaping every `$` (not only the `$` of `${`) keeps the rule local: no
look-ahead, and a value ending in `$` next to a literal `{` in a template stays inert.
"""

from __future__ import annotations

import re

_ESCAPES = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SPECIAL = re.compile(r'[\\"$\n\r\t]')
# A bare attribute name: Nix's ID token, minus the keywords (which need quotes).
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*")
_KEYWORDS = frozenset(
    {"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"}
)
# Characters Nix allows in a store path's name (nix/src/libstore/path.cc).
_STORE_NAME = re.compile(r"[A-Za-z0-9+\-._?=]+")


def nix_string(value: str) -> str:
    """`value` as a Nix double-quoted string literal that evaluates back to exactly `value`."""
    if "\0" in value:
        raise ValueError("a Nix string cannot hold a NUL character")
    return '"' + _SPECIAL.sub(lambda m: _ESCAPES[m.group()], value) + '"'


def nix_attr(name: str) -> str:
    """An attribute name: bare when Nix's grammar allows it, else a quoted string."""
    if _ID.fullmatch(name) and name not in _KEYWORDS:
        return name
    return nix_string(name)


def store_name(value: str) -> str:
    """A valid store path name for `value`: invalid characters become `_`, no leading dot.

    Nix limits names to 211 characters of [A-Za-z0-9+-._?=] that do not start with a dot.
    """
    name = "".join(c if _STORE_NAME.fullmatch(c) else "_" for c in value).lstrip(".")
    return (name or "path")[:211]


def is_store_name(value: str) -> bool:
    return bool(_STORE_NAME.fullmatch(value)) and not value.startswith(".") and len(value) <= 211
