"""The MLflow side of the shell: resolve an alias, read a version, download its files.

mlflow is imported only inside these functions (it costs about 2 s), and only when the spec has
a [model] section. Every MLflow error becomes one of envbuild's errors.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envbuild.errors import EnvbuildError, LockError, NetworkError
from envbuild.model.files import list_model_files
from envbuild.model.pin import ModelPin, ModelRef, model_digest
from envbuild.tools import QUIET_ENV

if TYPE_CHECKING:
    from mlflow import MlflowClient

# In-process MLflow: telemetry off (as for every subprocess), no progress bars on stderr, and a
# tracking server that is down fails in seconds instead of retrying with backoff for minutes.
MLFLOW_ENV = {
    **QUIET_ENV,
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def tracking_uri_for(project: Path, uri: str) -> str:
    """A relative sqlite path is relative to the project, not to the current directory."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        return prefix + str((project / uri[len(prefix):]).resolve())
    return uri


def _check_reachable(uri: str) -> None:
    """Fail fast and clearly before MLflow would create a database or retry a dead server."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
        if not path.is_file():
            raise LockError(f"no MLflow database at {path} (tracking URI {uri})",
                            hint="train and register the model first (e.g. `python train.py`), "
                            "or set [model].tracking_uri")
    elif uri.startswith(("http://", "https://")):
        import httpx

        try:
            resp = httpx.get(uri.rstrip("/") + "/health", timeout=httpx.Timeout(10.0, connect=5.0))
        except httpx.HTTPError as exc:
            raise NetworkError(f"the MLflow tracking server {uri} cannot be reached: {exc}",
                               hint="start it (`mlflow server ...`) or fix [model].tracking_uri"
                               ) from None
        if resp.status_code >= 500:
            raise NetworkError(f"the MLflow tracking server {uri} answered HTTP {resp.status_code}",
                               hint="check the server's log")


def client(project: Path, tracking_uri: str) -> MlflowClient:
    for key, value in MLFLOW_ENV.items():
        os.environ[key] = value
    uri = tracking_uri_for(project, tracking_uri)
    _check_reachable(uri)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextmanager
def mlflow_errors(what: str, tracking_uri: str) -> Iterator[None]:
    """MLflow's exceptions as envbuild errors that say what was asked and where."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        message = str(exc.message if hasattr(exc, "message") else exc).splitlines()[0]
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise LockError(f"{what}: {message} (tracking URI {tracking_uri})",
                            hint="check the name, version and alias; "
                            "`envbuild model history NAME` lists the alias moves") from None
        if "Max retries" in message or "Connection" in message or "connect" in message:
            raise NetworkError(f"{what}: the tracking server {tracking_uri} cannot be reached",
                               hint="start it or fix [model].tracking_uri") from None
        raise EnvbuildError(f"{what}: MLflow failed: {message}",
                            hint="run with -v for details") from None


def version_for(mlflow: MlflowClient, ref: ModelRef, tracking_uri: str) -> Any:
    """The ModelVersion the reference names: an alias is looked up once, here."""
    with mlflow_errors(f"model {ref.name}", tracking_uri):
        mlflow.get_registered_model(ref.name)  # "unknown model" before "unknown alias"
    if ref.alias is not None:
        with mlflow_errors(f"model {ref.name}: alias {ref.alias!r}", tracking_uri):
            return mlflow.get_model_version_by_alias(ref.name, ref.alias)
    with mlflow_errors(f"model {ref.name}: version {ref.version}", tracking_uri):
        return mlflow.get_model_version(ref.name, str(ref.version))


def download(project: Path, tracking_uri: str, name: str, version: str, dest: Path) -> Path:
    """Download `models:/NAME/VERSION` (never an alias) into `dest`; returns the model dir."""
    uri = tracking_uri_for(project, tracking_uri)
    client(project, tracking_uri)  # environment and reachability
    import mlflow
    from mlflow.artifacts import download_artifacts

    # `models:/` URIs are looked up in the *global* registry URI, whatever tracking_uri says:
    # without this, MLflow would open (and create) ./mlflow.db in the current directory.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    with mlflow_errors(f"downloading models:/{name}/{version}", tracking_uri):
        local = download_artifacts(artifact_uri=f"models:/{name}/{version}",
                                   dst_path=str(dest), tracking_uri=uri)
    return Path(local)


def read_pin(project: Path, spec_uri: str, tracking_uri: str, version: Any,
             model_dir: Path) -> ModelPin:
    """The lock's [model] table from a resolved version and its downloaded files."""
    from mlflow.models import Model

    ref = ModelRef.parse(spec_uri)
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        raise LockError(f"models:/{ref.name}/{version.version} is not an MLflow model (no MLmodel)",
                        hint="register a model logged with mlflow.<flavor>.log_model")
    meta = Model.load(str(mlmodel))
    sig = meta.signature.to_dict() if meta.signature is not None else {}
    files = list_model_files(model_dir)
    return ModelPin(
        uri=spec_uri,
        tracking_uri=tracking_uri,
        name=ref.name,
        alias=ref.alias,
        version=str(version.version),
        run_id=version.run_id or None,
        source=str(version.source),
        flavors=tuple(sorted(meta.flavors)),
        signature_inputs=sig.get("inputs"),
        signature_outputs=sig.get("outputs"),
        digest=model_digest(files),
        files=files,
    )


def resolve_pin(project: Path, spec_uri: str, tracking_uri: str) -> ModelPin:
    """Resolve the spec's model once: alias to version, then download that version and hash it."""
    mlflow = client(project, tracking_uri)
    version = version_for(mlflow, ModelRef.parse(spec_uri), tracking_uri)
    with tempfile.TemporaryDirectory(prefix="envbuild-model-") as tmp:
        model_dir = download(project, tracking_uri, version.name, str(version.version), Path(tmp))
        return read_pin(project, spec_uri, tracking_uri, version, model_dir)


def alias_target(project: Path, tracking_uri: str, name: str, alias: str) -> tuple[str, str, str]:
    """(version, run id, source) of what an alias points to now: one registry call.

    The version number alone does not identify a model: another store (a second machine that
    trained its own model) has a version 1 too. The run id and source do.
    """
    mlflow = client(project, tracking_uri)
    found = version_for(mlflow, ModelRef(name=name, alias=alias), tracking_uri)
    return str(found.version), str(found.run_id or ""), str(found.source)
