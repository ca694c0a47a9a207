"""Nix's recursive (NAR) hash, computed by envbuild; checked against Nix in tests/integration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envbuild.generate.nix_nar import dump_nar, nar_sha256, sri_sha256


def _tree(root: Path) -> Path:
    (root / "t" / "sub").mkdir(parents=True)
    (root / "t" / "a.txt").write_bytes(b"x" * 13)
    (root / "t" / "sub" / "run.sh").write_bytes(b"#!/bin/sh\n")
    os.chmod(root / "t" / "sub" / "run.sh", 0o755)
    os.symlink("../a.txt", root / "t" / "sub" / "link")
    (root / "t" / "empty").mkdir()
    (root / "t" / "Z").write_bytes(b"")
    return root / "t"


def test_known_hash(tmp_path: Path) -> None:
    # `nix hash path` of the same tree (Nix 2.8), see tests/integration/test_nix_flake.py.
    assert sri_sha256(nar_sha256(_tree(tmp_path))) == \
        "sha256-+fHBk40kvV7E/PMYhAR0Q9yNKnKdW+RUZ2oUftlqRC0="


def test_file_nar_layout(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"hello")

    def tok(b: bytes) -> bytes:
        return len(b).to_bytes(8, "little") + b + b"\0" * (-len(b) % 8)

    expected = b"".join(tok(t) for t in (b"nix-archive-1", b"(", b"type", b"regular",
                                          b"contents", b"hello", b")"))
    assert dump_nar(f) == expected


def test_only_content_mode_and_names_count(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    before = nar_sha256(tree)
    os.utime(tree / "a.txt", (0, 0))
    os.chmod(tree / "a.txt", 0o600)  # no owner x bit either way: same NAR
    assert nar_sha256(tree) == before
    os.chmod(tree / "a.txt", 0o700)
    assert nar_sha256(tree) != before


def test_special_files_are_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match="cannot store"):
        nar_sha256(tmp_path)


def test_sri() -> None:
    assert sri_sha256("sha256:" + "00" * 32) == "sha256-" + "A" * 43 + "="
    with pytest.raises(ValueError):
        sri_sha256("abcd")
