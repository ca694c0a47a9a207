"""The MLflow side of the shell: resolve an alias, read a version, download its files.

mlflow is imported only inside these functions (it costs about 2 s), and only when the spec has
a [model] section. Every MLflow error becomes one of envbuild's errors.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
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
    quick = _alias_target_quick(tracking_uri_for(project, tracking_uri), name, alias)
    if quick is not None:
        return quick
    mlflow = client(project, tracking_uri)
    found = version_for(mlflow, ModelRef(name=name, alias=alias), tracking_uri)
    return str(found.version), str(found.run_id or ""), str(found.source)


def _alias_target_quick(uri: str, name: str, alias: str) -> tuple[str, str, str] | None:
    """The alias lookup without importing mlflow (about 3 s here), or None to ask MLflow.

    `lock --check` and `verify` ask this on every run, so it must be cheap: a sqlite store is
    read directly (read-only), a server through its REST API. Anything unexpected (another
    schema, no such alias, a server error) returns None, and the MLflow client answers with
    its own, precise error.
    """
    if uri.startswith("sqlite:///"):
        import sqlite3

        path = uri.removeprefix("sqlite:///").split("?", 1)[0]
        if not Path(path).is_file():
            return None
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
                row = db.execute(
                    "SELECT v.version, v.run_id, v.source FROM registered_model_aliases a "
                    "JOIN model_versions v ON v.name = a.name AND v.version = a.version "
                    "WHERE a.name = ? AND a.alias = ?", (name, alias)).fetchall()
        except sqlite3.Error:
            return None
        if len(row) != 1:  # none, or several workspaces: let MLflow decide
            return None
        version, run_id, source = row[0]
        return str(version), str(run_id or ""), str(source)
    if uri.startswith(("http://", "https://")):
        import httpx

        try:
            resp = httpx.get(f"{uri.rstrip('/')}/api/2.0/mlflow/registered-models/alias",
                             params={"name": name, "alias": alias}, timeout=10.0)
            found = resp.json()["model_version"] if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError):
            return None
        if not isinstance(found, dict) or "version" not in found:
            return None
        return str(found["version"]), str(found.get("run_id") or ""), str(found.get("source", ""))
    return None
