"""A tiny churn-prediction service: stdlib HTTP on top of the locked pandas and scikit-learn.

GET /healthz                          -> {"status": "ok"}
GET /predict?tenure=3&monthly=80.5    -> {"churn": true, "probability": 0.87, ...}

The model is fitted at start-up on a small fixed data set (no network, no files), so the same
image always answers the same. `python -m app.serve` listens on 0.0.0.0:$PORT (default 8080).
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression

# tenure in months, monthly charge; churned customers are new and pay a lot.
TRAIN = pd.DataFrame({
    "tenure": [1, 2, 3, 4, 6, 8, 12, 18, 24, 30, 36, 48, 60, 72, 2, 5, 40, 55],
    "monthly": [95, 88, 90, 85, 80, 99, 70, 60, 55, 50, 45, 40, 35, 30, 30, 105, 100, 25],
    "churned": [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
})
FEATURES = ["tenure", "monthly"]


def fit() -> LogisticRegression:
    model = LogisticRegression(random_state=0)
    model.fit(TRAIN[FEATURES], TRAIN["churned"])
    return model


MODEL = fit()


def predict(tenure: float, monthly: float) -> dict[str, object]:
    row = pd.DataFrame({"tenure": [tenure], "monthly": [monthly]})
    probability = float(MODEL.predict_proba(row[FEATURES])[0][1])
    return {"churn": probability >= 0.5, "probability": round(probability, 4),
            "tenure": tenure, "monthly": monthly, "sklearn": sklearn.__version__}


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: dict[str, object]) -> None:
        data = (json.dumps(body, sort_keys=True) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send(200, {"status": "ok"})
            return
        if url.path == "/predict":
            query = parse_qs(url.query)
            try:
                tenure = float(query["tenure"][0])
                monthly = float(query["monthly"][0])
            except (KeyError, ValueError):
                self._send(400, {"error": "pass tenure and monthly as numbers"})
                return
            self._send(200, predict(tenure, monthly))
            return
        self._send(404, {"error": f"no route {url.path}"})

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # quiet: health checks would fill the log


def main() -> None:
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print(f"churn service on :{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
