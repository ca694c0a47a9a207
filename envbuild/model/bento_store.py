"""Download the locked model, check it, import it into the BentoML store: in its own process.

Run by `envbuild model package` through the Runner as
`python -m envbuild.model.bento_store PROJECT PIN_JSON TAG BENTO_TAG`, so BENTOML_HOME and the
telemetry switches come from that process's environment, and one process pays for importing
mlflow and bentoml (about 2.5 s each), not two.

Order: download `models:/NAME/VERSION` into a temp dir, check every file against the pin (a
mismatch ends here: nothing imported), then import under TAG, unless the store holds TAG
already: then its files are checked instead.

Prints one JSON object on stdout. Exit 0: {"status": "imported" | "present", "bento": true when
BENTO_TAG is already built}; exit 3: the store already holds a different model under TAG
(nothing changed); exit 4: BentoML refused the model; exit 5: an envbuild error
{"kind", "message", "hint"} (a digest mismatch, an unreachable tracking server, ...).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from envbuild.model.files import list_model_files
from envbuild.model.pin import model_digest

EXIT_CONFLICT = 3
EXIT_REFUSED = 4
EXIT_ERROR = 5
MLFLOW_FOLDER = "mlflow_model"  # where bentoml.mlflow keeps the MLflow files inside a model


def stored_digest(model_path: Path) -> str:
    return model_digest(list_model_files(model_path / MLFLOW_FOLDER))


def main(argv: list[str]) -> int:
    project, pin_json, tag, bento_tag = argv
    from envbuild.errors import EnvbuildError
    from envbuild.model.pin import ModelPin

    pin = ModelPin.from_dict(json.loads(pin_json))
    with tempfile.TemporaryDirectory(prefix="envbuild-model-") as tmp:
        try:
            return _import(Path(project), pin, Path(tmp), tag, bento_tag)
        except EnvbuildError as exc:
            print(json.dumps({"status": "error", "kind": type(exc).__name__,
                              "message": exc.message, "hint": exc.hint}))
            return EXIT_ERROR


def _import(project: Path, pin: Any, tmp: Path, tag: str, bento_tag: str) -> int:
    from envbuild.model.files import check_model_files
    from envbuild.model.registry import download

    digest = pin.digest
    model_dir = download(project, pin.tracking_uri, pin.name, pin.version, tmp / "model")
    check_model_files(model_dir, pin)  # IntegrityError: nothing imported
    import bentoml
    from bentoml.exceptions import BentoMLException, NotFound

    try:
        bentoml.bentos.get(bento_tag)
        bento = True
    except NotFound:
        bento = False

    try:
        existing = bentoml.models.get(tag)
    except NotFound:
        existing = None
    if existing is not None:
        have = stored_digest(Path(existing.path))
        if have != digest:
            print(json.dumps({"status": "conflict", "path": str(existing.path), "digest": have}))
            return EXIT_CONFLICT
        print(json.dumps({"status": "present", "path": str(existing.path), "bento": bento}))
        return 0
    try:
        model = bentoml.mlflow.import_model(tag, str(model_dir),
                                           labels={"envbuild.digest": digest})
    except BentoMLException as exc:
        print(json.dumps({"status": "refused", "message": str(exc)}))
        return EXIT_REFUSED
    have = stored_digest(Path(model.path))
    if have != digest:  # the copy BentoML made is not what was checked: take it out again
        bentoml.models.delete(tag)
        print(json.dumps({"status": "conflict", "path": str(model.path), "digest": have}))
        return EXIT_CONFLICT
    print(json.dumps({"status": "imported", "path": str(model.path), "bento": bento}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
