"""Train the churn model and register it in MLflow as `churn`, with the alias `production`.

    python train.py                          # sqlite:///mlflow.db next to this file
    python train.py --tracking-uri http://127.0.0.1:5001 --versions 2

Each run registers --versions new versions of `churn` (a scikit-learn pipeline on
data/churn.csv, with an MLflow signature) and points --alias at the first of them, so the others
are there to promote: `envbuild model promote churn 2 --alias production`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "churn.csv"
FEATURES = ["tenure", "monthly_charges", "contract"]
LABEL = "churned"

for key, value in {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
                   "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}.items():
    os.environ.setdefault(key, value)


def write_data(path: Path, rows: int = 400, seed: int = 7) -> None:
    """The example's data: a small synthetic churn table, the same bytes on every run."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lines = [",".join([*FEATURES, LABEL])]
    for _ in range(rows):
        tenure = int(rng.integers(0, 72))
        contract = str(rng.choice(["month", "year", "two_year"]))
        monthly = round(float(rng.uniform(20, 120)), 2)
        risk = 1.5 - tenure / 24 + monthly / 80 - (1.0 if contract != "month" else 0.0)
        churned = int(risk + rng.normal(0, 0.5) > 0.5)
        lines.append(f"{tenure},{monthly},{contract},{churned}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def train(c: float):  # type: ignore[no-untyped-def]
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.read_csv(DATA)
    x = frame[FEATURES].astype({"tenure": "int64", "monthly_charges": "float64",
                                "contract": "str"})
    y = frame[LABEL]
    model = Pipeline([
        ("features", ColumnTransformer([
            ("numbers", StandardScaler(), ["tenure", "monthly_charges"]),
            ("contract", OneHotEncoder(handle_unknown="ignore"), ["contract"]),
        ])),
        ("classify", LogisticRegression(C=c, max_iter=1000)),
    ]).fit(x, y)
    return model, x


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db",
                        help="relative sqlite paths are relative to this directory")
    parser.add_argument("--versions", type=int, default=1, help="versions to register")
    parser.add_argument("--alias", default="production", help="alias for the first version")
    parser.add_argument("--name", default="churn", help="the registered model's name")
    args = parser.parse_args(argv)

    import mlflow
    from mlflow.models import infer_signature

    uri = args.tracking_uri
    if uri.startswith("sqlite:///") and not uri.removeprefix("sqlite:///").startswith("/"):
        uri = "sqlite:///" + str(HERE / uri.removeprefix("sqlite:///"))
    mlflow.set_tracking_uri(uri)
    if not DATA.is_file():
        write_data(DATA)
    experiment = "churn"
    if mlflow.get_experiment_by_name(experiment) is None:
        # A file store next to the sqlite database; a tracking server keeps its own artifacts.
        location = (HERE / "mlruns").as_uri() if uri.startswith("sqlite:") else None
        mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)

    client = mlflow.MlflowClient()
    registered = []
    for i in range(args.versions):
        model, x = train(c=1.0 / (i + 1))
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                model, name="model", signature=infer_signature(x, model.predict(x)),
                registered_model_name=args.name, serialization_format="cloudpickle",
            )
        registered.append(str(info.registered_model_version))
    if args.alias and registered:
        client.set_registered_model_alias(args.name, args.alias, registered[0])
    print(f"registered {args.name} version(s) {', '.join(registered)}; "
          f"@{args.alias} -> {registered[0] if registered else '-'} ({uri})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
