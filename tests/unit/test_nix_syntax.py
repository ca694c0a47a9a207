"""The one escaping function for Nix strings, and attribute and store names."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envbuild.generate.nix_syntax import is_store_name, nix_attr, nix_string, store_name


@pytest.mark.parametrize(("value", "expected"), [
    ("plain", '"plain"'),
    ('say "hi"', r'"say \"hi\""'),
    ("${builtins.abort 1}", r'"\${builtins.abort 1}"'),
    ("$${x}", r'"\$\${x}"'),
    ("ends in $", r'"ends in \$"'),
    ("back\\slash", r'"back\\slash"'),
    ("\\${x}", r'"\\\${x}"'),
    ("line\nbreak\r\ttab", r'"line\nbreak\r\ttab"'),
    ("''${x}''", "\"''\\${x}''\""),
    ("ünïcode ✓", '"ünïcode ✓"'),
    ("", '""'),
])
def test_nix_string(value: str, expected: str) -> None:
    assert nix_string(value) == expected


def test_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        nix_string("a\0b")


def _unescape(literal: str) -> str:
    """Nix's reading of a double-quoted string literal (lexer.l), for literals without `${`."""
    assert literal[0] == literal[-1] == '"'
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1]
            out.append({"n": "\n", "r": "\r", "t": "\t"}.get(nxt, nxt))
            i += 2
            continue
        assert c != '"', "an unescaped quote ends the string early"
        assert not (c == "$" and body[i + 1:i + 2] == "{"), "an unescaped ${ interpolates"
        out.append(c)
        i += 1
    return "".join(out)


@given(st.text(alphabet=st.characters(blacklist_characters="\0"), max_size=60))
def test_round_trip_and_no_interpolation(value: str) -> None:
    literal = nix_string(value)
    assert _unescape(literal) == value
    assert "\n" not in literal and "\r" not in literal
    # Every $ and " inside is preceded by an odd number of backslashes (escaped).
    for m in re.finditer(r'(\\*)([$"])', literal[1:-1]):
        assert len(m.group(1)) % 2 == 1, literal


@pytest.mark.parametrize(("name", "expected"), [
    ("x86_64-linux", "x86_64-linux"),
    ("default", "default"),
    ("in", '"in"'),
    ("or", '"or"'),
    ("dev.envbuild.bundle", '"dev.envbuild.bundle"'),
    ("1abc", '"1abc"'),
    ("${x}", r'"\${x}"'),
])
def test_nix_attr(name: str, expected: str) -> None:
    assert nix_attr(name) == expected


def test_store_name() -> None:
    assert store_name("train.csv") == "train.csv"
    assert store_name(".hidden file$(x)") == "hidden_file__x_"
    assert store_name("...") == "path"
    assert is_store_name("numpy-2.3.4-cp311-cp311-manylinux_2_28_x86_64.whl")
    assert not is_store_name("a%2Bb.whl") and not is_store_name(".x")
