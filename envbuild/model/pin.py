"""The lock's [model] table and the names derived from it. Pure: no files, no network.

The model digest (format version 1 of envbuild.lock) is defined in `model_digest` below.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from envbuild.errors import EnvbuildError, LockError

REGISTRY = "mlflow"
# The embedded default: an MLflow sqlite store next to the spec (relative to the project).
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# Written by MLflow into every downloaded model directory; its content depends on how the model
# was asked for (by alias or by version), so it is not part of what identifies the model.
IGNORED_FILES = frozenset({"registered_model_meta"})
PYFUNC_FLAVOR = "python_function"

_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>[0-9]+))$")
_TAG_BAD = re.compile(r"[^a-z0-9._-]+")


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelRef:
    """A parsed `models:/NAME@ALIAS` or `models:/NAME/VERSION`."""

    name: str
    alias: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, uri: str) -> ModelRef:
        m = _URI.match(uri)
        if m is None:
            raise ValueError(f"{uri!r} is not 'models:/NAME@ALIAS' or 'models:/NAME/VERSION'")
        return cls(name=m["name"], alias=m["alias"], version=m["version"])

    @property
    def pinned_uri(self) -> str:
        """What packaging downloads: always a version, never an alias (aliases move)."""
        assert self.version is not None
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelFile:
    path: str  # relative, POSIX separators
    size: int
    sha256: str  # hex, no prefix

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.sha256}


def model_digest(files: Iterable[ModelFile]) -> str:
    """The model digest: "sha256:" + sha256 over the listing of the model's files.

    Canonical form: one line per file, "<path>\\0<size>\\0<sha256 hex>\\n", with `path` relative to
    the model directory in POSIX form, lines sorted by the UTF-8 bytes of the path. Files named in
    IGNORED_FILES at the top of the directory are left out (callers drop them before this).
    Directories, empty or not, add nothing. Changing this bumps the lock's FORMAT_VERSION.
    """
    ordered = sorted(files, key=lambda f: f.path.encode())
    listing = "".join(f"{f.path}\0{f.size}\0{f.sha256}\n" for f in ordered)
    return "sha256:" + hashlib.sha256(listing.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelPin:
    """What `envbuild lock` pins for the spec's [model]: one registered version, by digest."""

    uri: str  # as the spec wrote it (alias or version)
    tracking_uri: str  # as the spec wrote it (or the default)
    name: str
    alias: str | None
    version: str  # always a string: sqlite stores give an int, HTTP a str
    run_id: str | None
    source: str
    flavors: tuple[str, ...]  # sorted
    signature_inputs: str | None  # MLflow's own JSON of the input schema, as in MLmodel
    signature_outputs: str | None
    digest: str
    files: tuple[ModelFile, ...] = field(default=())
    registry: str = REGISTRY

    @property
    def pinned_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def digest_hex(self) -> str:
        return self.digest.removeprefix("sha256:")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelPin:
        try:
            sig = d.get("signature", {})
            return cls(
                registry=d["registry"],
                uri=d["uri"],
                tracking_uri=d["tracking_uri"],
                name=d["name"],
                alias=d.get("alias"),
                version=str(d["version"]),
                run_id=d.get("run_id"),
                source=d["source"],
                flavors=tuple(d["flavors"]),
                signature_inputs=sig.get("inputs"),
                signature_outputs=sig.get("outputs"),
                digest=d["digest"],
                files=tuple(ModelFile(path=p, size=int(f["size"]), sha256=f["sha256"])
                            for p, f in sorted(d.get("files", {}).items())),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LockError(f"envbuild.lock: the [model] table is damaged: {exc!r}",
                            hint="re-run `envbuild lock`") from None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "registry": self.registry,
            "uri": self.uri,
            "tracking_uri": self.tracking_uri,
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "flavors": sorted(self.flavors),
            "digest": self.digest,
            "files": {f.path: f.to_dict() for f in sorted(self.files, key=lambda f: f.path)},
        }
        if self.alias is not None:
            out["alias"] = self.alias
        if self.run_id is not None:
            out["run_id"] = self.run_id
        sig = {k: v for k, v in (("inputs", self.signature_inputs),
                                 ("outputs", self.signature_outputs)) if v is not None}
        if sig:
            out["signature"] = sig
        return out


def tag_name(name: str) -> str:
    """A BentoML tag name from any name: lowercase, [a-z0-9._-], starting and ending alnum."""
    cleaned = _TAG_BAD.sub("-", name.lower()).strip("-._")
    return cleaned or "model"


def bento_model_tag(pin: ModelPin) -> str:
    """The model's tag in the BentoML store: the MLflow version plus the digest, never random.

    The same locked model gets the same tag on every machine; a different model under the same
    MLflow name and version (another registry) gets a different one.
    """
    return f"{tag_name(pin.name)}:v{pin.version}-{pin.digest_hex[:16]}"


def bento_tag(bundle_name: str, short_id: str) -> str:
    """The bento's tag: the bundle name and the bundle id's short form."""
    return f"{tag_name(bundle_name)}:{short_id}"


# MLflow column types -> the Python type the service's request model declares for them.
COLUMN_TYPES = {
    "boolean": "bool",
    "integer": "int",
    "long": "int",
    "float": "float",
    "double": "float",
    "string": "str",
    "binary": "bytes",
    "datetime": "datetime.datetime",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class InputField:
    name: str  # the column name, as the signature has it (and the request must use)
    type: str  # one of COLUMN_TYPES' values
    required: bool


def input_fields(pin: ModelPin) -> tuple[InputField, ...]:
    """The request's typed fields, one per column of the MLflow input signature."""
    where = f"model {pin.pinned_uri}"
    if not pin.signature_inputs:
        raise EnvbuildError(f"{where} has no signature: the service cannot type its input",
                            hint="log the model with `signature=infer_signature(X, y)`")
    try:
        columns = json.loads(pin.signature_inputs)
    except json.JSONDecodeError as exc:
        raise LockError(f"{where}: the locked signature is not JSON: {exc}",
                        hint="re-run `envbuild lock`") from None
    fields = []
    for column in columns:
        kind = column.get("type")
        if "name" not in column or kind not in COLUMN_TYPES:
            raise EnvbuildError(
                f"{where}: input {column.get('name', '(unnamed)')!r} of type {kind!r} is not "
                "supported (supported: named columns of "
                f"{', '.join(sorted(COLUMN_TYPES))})",
                hint="log the model with a column-based signature (a pandas DataFrame input)",
            )
        fields.append(InputField(name=str(column["name"]), type=COLUMN_TYPES[kind],
                                 required=bool(column.get("required", True))))
    if len({f.name for f in fields}) != len(fields):
        raise EnvbuildError(f"{where}: the input signature repeats a column name",
                            hint="give every input column its own name")
    return tuple(fields)
