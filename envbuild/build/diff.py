"""A semantic diff of two images: which layer, which files, and what differs.

Reads two OCI image layouts (as `skopeo copy ... oci:DIR` writes them) and compares the
configs field by field and the layers entry by entry: content (sha256), mode, owner, time,
size, link target, type. It is what a user needs to find the source of non-determinism
without diffoscope. The comparison functions are pure; only `read_layout` touches files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class Entry:
    path: str
    kind: str  # file, dir, symlink, hardlink, other
    sha256: str
    size: int
    mode: int
    uid: int
    gid: int
    mtime: int
    link: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Image:
    config: dict[str, Any]
    layers: tuple[dict[str, Entry], ...]  # one path -> Entry map per layer, in order

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(self.config.get("rootfs", {}).get("diff_ids", ()))


@dataclass(frozen=True, kw_only=True, slots=True)
class FileChange:
    path: str
    what: tuple[str, ...]  # "added", "removed", or attribute names: content, mode, owner, ...
    detail: str


@dataclass(frozen=True, kw_only=True, slots=True)
class LayerDiff:
    index: int  # 0-based position in the image
    created_by: str
    old: str  # diff_id
    new: str
    files: tuple[FileChange, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageDiff:
    config: tuple[str, ...]  # "key: old -> new" lines for differing config fields
    layers: tuple[LayerDiff, ...]

    @property
    def same(self) -> bool:
        return not self.config and not self.layers


_KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
          tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}


def read_layer(data: bytes) -> dict[str, Entry]:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    entries = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            digest = ""
            if member.isreg():
                f = tar.extractfile(member)
                digest = hashlib.sha256(f.read() if f else b"").hexdigest()
            path = member.name.removeprefix("./").rstrip("/")
            entries[path] = Entry(path=path, kind=_KINDS.get(member.type, "other"),
                                  sha256=digest, size=member.size, mode=member.mode,
                                  uid=member.uid, gid=member.gid, mtime=int(member.mtime),
                                  link=member.linkname)
    return entries


def read_layout(directory: Path) -> Image:
    """The config and layers of the single image in an OCI layout directory."""
    blobs = directory / "blobs" / "sha256"

    def blob(digest: str) -> bytes:
        return (blobs / digest.split(":", 1)[1]).read_bytes()

    index = json.loads((directory / "index.json").read_text())
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    config = json.loads(blob(manifest["config"]["digest"]))
    layers = tuple(read_layer(blob(layer["digest"])) for layer in manifest["layers"])
    return Image(config=config, layers=layers)


def _entry_changes(old: Entry, new: Entry) -> tuple[tuple[str, ...], str]:
    what, detail = [], []
    if old.kind != new.kind:
        what.append("type")
        detail.append(f"type {old.kind} -> {new.kind}")
    if old.sha256 != new.sha256 or old.size != new.size:
        what.append("content")
        detail.append(f"content sha256 {old.sha256[:12]} -> {new.sha256[:12]} "
                      f"({old.size} -> {new.size} bytes)")
    if old.mode != new.mode:
        what.append("mode")
        detail.append(f"mode {old.mode:o} -> {new.mode:o}")
    if (old.uid, old.gid) != (new.uid, new.gid):
        what.append("owner")
        detail.append(f"owner {old.uid}:{old.gid} -> {new.uid}:{new.gid}")
    if old.mtime != new.mtime:
        what.append("time")
        detail.append(f"mtime {old.mtime} -> {new.mtime}")
    if old.link != new.link:
        what.append("link")
        detail.append(f"link {old.link!r} -> {new.link!r}")
    return tuple(what), "; ".join(detail)


def diff_layer(old: dict[str, Entry], new: dict[str, Entry]) -> tuple[FileChange, ...]:
    changes = []
    for path in sorted(set(old) | set(new)):
        if path not in new:
            changes.append(FileChange(path=path, what=("removed",), detail="only in the recorded image"))
        elif path not in old:
            changes.append(FileChange(path=path, what=("added",), detail="only in the rebuild"))
        else:
            what, detail = _entry_changes(old[path], new[path])
            if what:
                changes.append(FileChange(path=path, what=what, detail=detail))
    return tuple(changes)


def _history(config: dict[str, Any]) -> list[str]:
    """created_by of every history entry that made a layer, in layer order."""
    return [h.get("created_by", "") for h in config.get("history", []) if not h.get("empty_layer")]


def _config_lines(old: dict[Any, Any], new: dict[Any, Any], prefix: str = "") -> list[str]:
    lines = []
    for key in sorted(set(old) | set(new), key=str):
        if key in ("rootfs",) and not prefix:
            continue  # the layers are compared one by one
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            lines += _config_lines(a, b, f"{prefix}{key}.")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            lines += _config_lines(dict(enumerate(a)), dict(enumerate(b)), f"{prefix}{key}.")
        else:
            lines.append(_short(f"{prefix}{key}: {json.dumps(a)} -> {json.dumps(b)}"))
    return lines


def _short(line: str, width: int = 240) -> str:
    return line if len(line) <= width else line[: width - 3] + "..."


def diff_images(old: Image, new: Image) -> ImageDiff:
    layers = []
    history = _history(new.config)
    old_ids, new_ids = old.diff_ids, new.diff_ids
    for i in range(max(len(old.layers), len(new.layers))):
        old_id = old_ids[i] if i < len(old_ids) else "(none)"
        new_id = new_ids[i] if i < len(new_ids) else "(none)"
        if old_id == new_id:
            continue
        files = diff_layer(old.layers[i] if i < len(old.layers) else {},
                           new.layers[i] if i < len(new.layers) else {})
        layers.append(LayerDiff(index=i, created_by=history[i] if i < len(history) else "",
                                old=old_id, new=new_id, files=files))
    return ImageDiff(config=tuple(_config_lines(old.config, new.config)), layers=tuple(layers))


def render_diff(diff: ImageDiff, *, limit: int = 40) -> list[str]:
    """Human lines: each differing layer with its step, then up to `limit` files each."""
    lines = []
    for layer in diff.layers:
        step = " ".join(layer.created_by.split())
        if len(step) > 100:
            step = step[:97] + "..."
        lines.append(f"layer {layer.index + 1}: {layer.old[:19]} -> {layer.new[:19]}  ({step})")
        for change in layer.files[:limit]:
            lines.append(f"  {change.path}: {', '.join(change.what)}: {change.detail}")
        if len(layer.files) > limit:
            lines.append(f"  ... and {len(layer.files) - limit} more files")
        if not layer.files:
            lines.append("  no file differs: the tar bytes differ (entry order or headers)")
    for line in diff.config:
        lines.append(f"config {line}")
    return lines
