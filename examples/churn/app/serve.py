"""The churn service: the locked MLflow model behind a small stdlib HTTP server.

GET  /healthz                                             -> {"status": "ok"}
GET  /predict?tenure=3&monthly_charges=80.5&contract=month -> {"churn": true, "probability": ...}
POST /predict  {"tenure": 3, "monthly_charges": 80.5, "contract": "month"}   (the same answer)

The model is the one `envbuild.lock` pins (`models:/churn@production`, resolved to a version and
a digest of its files). In the image it lies in /opt/model, checked against that digest when the
image was generated; the image's ENVBUILD_MODEL_* variables say where and which it is. Outside
the image, `envbuild model fetch` puts the same files in ./model, which is the default here.
`python -m app.serve` listens on 0.0.0.0:$PORT (default 8080).
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd

MODEL_DIR = Path(os.environ.get("ENVBUILD_MODEL_DIR", "model"))
MODEL_INFO = {
    "name": os.environ.get("ENVBUILD_MODEL_NAME", "churn"),
    "version": os.environ.get("ENVBUILD_MODEL_VERSION", "unknown"),
    "digest": os.environ.get("ENVBUILD_MODEL_DIGEST", "unknown"),
}
# The model's input schema (its MLflow signature): column -> how a query string value is read.
COLUMNS = {"tenure": int, "monthly_charges": float, "contract": str}


def load_model() -> Any:
    """The scikit-learn pipeline, through MLflow's own loader for the sklearn flavor."""
    if not (MODEL_DIR / "MLmodel").is_file():
        sys.exit(f"error: no MLflow model in {MODEL_DIR.resolve()}\n"
                 "hint: run `envbuild model fetch` (or set ENVBUILD_MODEL_DIR)")
    import mlflow.sklearn

    return mlflow.sklearn.load_model(str(MODEL_DIR))


def parse_input(values: dict[str, Any]) -> dict[str, Any]:
    """One row of the model's input; ValueError names what is missing or malformed."""
    row = {}
    for column, kind in COLUMNS.items():
        if column not in values:
            raise ValueError(f"missing {column}")
        try:
            row[column] = kind(values[column])
        except (TypeError, ValueError):
            raise ValueError(f"{column} must be a {kind.__name__}") from None
    return row


def predict(model: Any, row: dict[str, Any]) -> dict[str, Any]:
    frame = pd.DataFrame({column: [value] for column, value in row.items()})
    probability = float(model.predict_proba(frame)[0][1])
    return {"churn": probability >= 0.5, "probability": round(probability, 4),
            "input": row, "model": MODEL_INFO}


class Handler(BaseHTTPRequestHandler):
    model: Any = None

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = (json.dumps(body, sort_keys=True) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _predict(self, values: dict[str, Any]) -> None:
        try:
            row = parse_input(values)
        except ValueError as exc:
            self._send(400, {"error": str(exc), "expects": list(COLUMNS)})
            return
        self._send(200, predict(self.model, row))

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send(200, {"status": "ok"})
        elif url.path == "/predict":
            self._predict({k: v[0] for k, v in parse_qs(url.query).items()})
        else:
            self._send(404, {"error": f"no route {url.path}"})

    def do_POST(self) -> None:  # noqa: N802
        if urlsplit(self.path).path != "/predict":
            self._send(404, {"error": f"no route {self.path}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            values = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            values = None
        if not isinstance(values, dict):
            self._send(400, {"error": "send a JSON object", "expects": list(COLUMNS)})
            return
        self._predict(values)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # quiet: health checks would fill the log


def main() -> None:
    Handler.model = load_model()  # before listening: healthy means ready to predict
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print(f"churn service on :{port}: model {MODEL_INFO['name']} version "
          f"{MODEL_INFO['version']} from {MODEL_DIR}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
