"""Nix's recursive hash of a file tree: the sha256 of its NAR serialisation.

Nix checks a directory store path (`builtins.path { recursive = true; sha256 = ...; }`) against
the sha256 of the tree's NAR (Nix ARchive), not against envbuild's tree digest; this module
computes that hash without Nix. Canonical form, as Nix's `dumpPath` writes it:

- every token is `str(b)`: the length as a little-endian u64, the bytes, zero padding to 8;
- the archive is `str("nix-archive-1")` then the node of the root;
- a node is `(` `type` then one of
  `regular` [`executable` ``] `contents` <bytes>  (executable: the owner's x bit),
  `symlink` `target` <link text>,
  `directory` then, per entry sorted by name bytewise, `entry` `(` `name` N `node` <node> `)`;
  and `)`.
Nothing else enters: no times, owners, other mode bits. Tested against `nix hash path` and
`nix-store --dump`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

_CHUNK = 1 << 20


def _token(data: bytes) -> bytes:
    return len(data).to_bytes(8, "little") + data + b"\0" * (-len(data) % 8)


class _NarWriter:
    def __init__(self, sink: Callable[[bytes], object]) -> None:
        self.sink = sink

    def tok(self, *items: bytes) -> None:
        for item in items:
            self.sink(_token(item))

    def node(self, path: Path) -> None:
        st = os.lstat(path)
        self.tok(b"(", b"type")
        if stat.S_ISLNK(st.st_mode):
            self.tok(b"symlink", b"target", os.fsencode(os.readlink(path)))
        elif stat.S_ISDIR(st.st_mode):
            self.tok(b"directory")
            for name in sorted(os.fsencode(n) for n in os.listdir(path)):
                self.tok(b"entry", b"(", b"name", name, b"node")
                self.node(path / os.fsdecode(name))
                self.tok(b")")
        elif stat.S_ISREG(st.st_mode):
            self.tok(b"regular")
            if st.st_mode & stat.S_IXUSR:
                self.tok(b"executable", b"")
            self.tok(b"contents")
            self.sink(st.st_size.to_bytes(8, "little"))
            size = 0
            with path.open("rb") as f:
                while chunk := f.read(_CHUNK):
                    size += len(chunk)
                    self.sink(chunk)
            if size != st.st_size:
                raise OSError(f"{path} changed size while it was being hashed")
            self.sink(b"\0" * (-size % 8))
        else:
            raise ValueError(f"{path}: Nix cannot store this kind of file (socket, device, fifo)")
        self.tok(b")")


def dump_nar(path: Path) -> bytes:
    """The NAR bytes of `path` (for tests and small trees; hashing streams instead)."""
    out = bytearray()
    writer = _NarWriter(out.extend)
    writer.tok(b"nix-archive-1")
    writer.node(path)
    return bytes(out)


def nar_sha256(path: Path) -> str:
    """sha256 (hex) of the NAR of `path`: what `nix hash path` prints, in hex."""
    digest = hashlib.sha256()
    writer = _NarWriter(digest.update)
    writer.tok(b"nix-archive-1")
    writer.node(path)
    return digest.hexdigest()


def sri_sha256(hex_digest: str) -> str:
    """`sha256-<base64>`: the SRI form Nix prints and accepts for a hex sha256."""
    raw = bytes.fromhex(hex_digest.removeprefix("sha256:"))
    if len(raw) != 32:
        raise ValueError(f"not a sha256 digest: {hex_digest!r}")
    return "sha256-" + base64.b64encode(raw).decode()
