"""Import a checked MLflow model directory into the BentoML model store, in its own process.

Run by `envbuild model package` through the Runner as
`python -m envbuild.model.bento_store TAG MODEL_DIR DIGEST BENTO_TAG`, so BENTOML_HOME and the telemetry
switches come from that process's environment, and envbuild's own process never imports bentoml.

Prints one JSON object on stdout. Exit 0: {"status": "imported" | "present", "bento": true when
BENTO_TAG is already built (one bentoml import answers both questions)}; exit 3: the store
already holds a different model under TAG (nothing changed); exit 4: BentoML refused the model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from envbuild.model.files import list_model_files
from envbuild.model.pin import model_digest

EXIT_CONFLICT = 3
EXIT_REFUSED = 4
MLFLOW_FOLDER = "mlflow_model"  # where bentoml.mlflow keeps the MLflow files inside a model


def stored_digest(model_path: Path) -> str:
    return model_digest(list_model_files(model_path / MLFLOW_FOLDER))


def main(argv: list[str]) -> int:
    tag, model_dir, digest, bento_tag = argv
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
        model = bentoml.mlflow.import_model(tag, model_dir, labels={"envbuild.digest": digest})
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
