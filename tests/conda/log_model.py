"""Log and register a tiny pyfunc model whose conda.yaml names the tests' local channel.

    python log_model.py TRACKING_URI CHANNEL_URL

Run as a subprocess (MLflow's import and globals stay out of the test process).
"""

from __future__ import annotations

import os
import sys

for key, value in {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
                   "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}.items():
    os.environ.setdefault(key, value)


def main(tracking_uri: str, channel: str) -> None:
    import mlflow
    import mlflow.pyfunc

    class Echo(mlflow.pyfunc.PythonModel):  # type: ignore[misc, name-defined]
        def predict(self, context, model_input):  # type: ignore[no-untyped-def]
            return model_input

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    conda_env = {"name": "echo", "channels": [channel],
                 "dependencies": ["tinytool >=2", {"pip": ["six==1.16.0"]}]}
    with mlflow.start_run():
        mlflow.pyfunc.log_model(name="model", python_model=Echo(), conda_env=conda_env,
                                registered_model_name="echo")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
