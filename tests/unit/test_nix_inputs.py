"""The flake's store paths from the lock's [data] and [model] tables: flat sha256 per file."""

from __future__ import annotations

from typing import Any

import pytest

from envbuild.errors import LockError
from envbuild.generate.nix import StorePath
from envbuild.generate.nix_inputs import data_store_paths, model_store_paths, store_paths

A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
DATA = {"refs": {
    "data/train.csv": {"kind": "file", "digest": f"sha256:{A}", "size": 10, "files": 1},
    "data/images": {"kind": "dir", "digest": f"sha256:{B}", "size": 20, "files": 2},
}}


def listing(ref: Any) -> list[Any]:
    from envbuild.data.tree import TreeEntry

    assert ref.path == "data/images" and ref.digest == f"sha256:{B}"
    return [TreeEntry(path="x/1.png", size=5, executable=False, hexdigest=C),
            TreeEntry(path="2.png", size=15, executable=True, hexdigest=D)]


def test_data_refs_become_flat_file_paths() -> None:
    assert sorted(data_store_paths(DATA, listing), key=lambda p: p.name) == [
        StorePath(name="data/images/2.png", path="data/images/2.png", sha256=D, kind="file"),
        StorePath(name="data/images/x/1.png", path="data/images/x/1.png", sha256=C, kind="file"),
        StorePath(name="data/train.csv", path="data/train.csv", sha256=A, kind="file"),
    ]


def test_md5_refs_from_dvc_are_refused() -> None:
    dvc = {"refs": {"data/raw.csv": {"kind": "file", "digest": "md5:" + "e" * 32, "size": 1,
                                     "files": 1, "source": "dvc", "origin": "raw.csv.dvc"}}}
    with pytest.raises(LockError) as err:
        data_store_paths(dvc, listing)
    assert "pinned by md5 (imported from dvc)" in err.value.message
    assert "envbuild data add data/raw.csv" in err.value.hint


def test_model_files_from_the_lock() -> None:
    pytest.importorskip("envbuild.model.pin")
    model = {"registry": "mlflow", "uri": "models:/churn/3", "tracking_uri": "sqlite:///m.db",
             "name": "churn", "version": "3", "source": "runs:/r/model",
             "flavors": ["python_function"], "digest": f"sha256:{A}",
             "files": {"MLmodel": {"size": 3, "sha256": B}, "model.pkl": {"size": 9, "sha256": C}}}
    assert model_store_paths(model) == [
        StorePath(name="model/MLmodel", path="model/MLmodel", sha256=B, kind="file"),
        StorePath(name="model/model.pkl", path="model/model.pkl", sha256=C, kind="file"),
    ]
    both = store_paths(DATA, model, listing)
    assert [p.name for p in both] == sorted(p.name for p in both)
    assert len(both) == 5


def test_nothing_pinned_nothing_to_check() -> None:
    assert store_paths({}, {}, listing) == ()
