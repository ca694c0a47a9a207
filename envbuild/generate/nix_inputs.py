"""The flake's model and data store paths, from the lock's [data] and [model] tables. Pure.

Nix checks every path by a flat sha256 (the sha256 of the file's bytes), which is exactly what
the lock already records per file:
- a data file ref: its own digest;
- a data directory ref: one path per file of its listing (the listing object is named, and
  so checked, by the directory digest the lock records); empty directories are not part of a
  directory's digest and do not appear in the flake either;
- the model: one path per file of `[model].files`, under MODEL_DIR.
Flat hashes lose the executable bit (a flat store path is never executable); data and model
files do not need it. Refs imported from DVC are pinned by md5, which Nix cannot check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from envbuild.errors import LockError
from envbuild.generate.nix import StorePath

# Where the flake expects the locked model's files, relative to the project.
MODEL_DIR = "model"

Listing = Callable[[Any], Sequence[Any]]  # a directory DataRef -> its TreeEntry listing


def data_store_paths(data: Mapping[str, Any], listing: Listing) -> list[StorePath]:
    from envbuild.data.refs import DataTable

    out: list[StorePath] = []
    for ref in DataTable.from_dict(data).refs:
        if ref.algorithm != "sha256":
            raise LockError(
                f"{ref.path} is pinned by {ref.algorithm} (imported from {ref.source}); Nix "
                "checks files by sha256",
                hint=f"run `envbuild data add {ref.path}` to pin it by sha256, then generate again",
            )
        if ref.kind == "file":
            out.append(StorePath(name=ref.path, path=ref.path, sha256=ref.hexdigest, kind="file"))
            continue
        for entry in listing(ref):
            rel = f"{ref.path}/{entry.path}"
            out.append(StorePath(name=rel, path=rel, sha256=entry.hexdigest, kind="file"))
    return out


def model_store_paths(model: Mapping[str, Any], model_dir: str = MODEL_DIR) -> list[StorePath]:
    if not model:
        return []
    from envbuild.model.pin import ModelPin

    pin = ModelPin.from_dict(model)
    return [StorePath(name=f"{model_dir}/{f.path}", path=f"{model_dir}/{f.path}",
                      sha256=f.sha256, kind="file") for f in pin.files]


def store_paths(data: Mapping[str, Any], model: Mapping[str, Any], listing: Listing,
                model_dir: str = MODEL_DIR) -> tuple[StorePath, ...]:
    paths = [*data_store_paths(data, listing), *model_store_paths(model, model_dir)]
    return tuple(sorted(paths, key=lambda p: p.name))
