"""Frozen domain types of the spec. Pure: no file access here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64")
# Debian bookworm's glibc: the newest manylinux tag a wheel may carry to run on the default base.
DEFAULT_GLIBC = "2.36"


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageSpec:
    base: str | None = None
    name: str | None = None
    # How the image runs (until the model issue brings a BentoML service): the exec-form
    # command, the port a service listens on, its health path, and the project paths copied
    # into the code layer.
    cmd: tuple[str, ...] = ()
    port: int | None = None
    healthcheck: str | None = None
    code: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageSpec:
        return cls(base=d.get("base"), name=d.get("name"), cmd=tuple(d.get("cmd", ())),
                   port=d.get("port"), healthcheck=d.get("healthcheck"),
                   code=tuple(d.get("code", ())))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in (("base", self.base), ("name", self.name),
                                                  ("port", self.port),
                                                  ("healthcheck", self.healthcheck))
                               if v is not None}
        if self.cmd:
            out["cmd"] = list(self.cmd)
        if self.code:
            out["code"] = list(self.code)
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelSpec:
    """Room for the model issue: parsed and validated, not locked yet."""

    uri: str
    registry: str = "mlflow"
    tracking_uri: str | None = None
    # "conda": the model's own conda.yaml (as MLflow logged it) is the conda environment.
    environment: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(
            uri=d["uri"], registry=d.get("registry", "mlflow"), tracking_uri=d.get("tracking_uri"),
            environment=d.get("environment"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"registry": self.registry, "uri": self.uri}
        if self.tracking_uri is not None:
            out["tracking_uri"] = self.tracking_uri
        if self.environment is not None:
            out["environment"] = self.environment
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class DataSpec:
    """`envbuild data add` with no paths adds these; push / pull default to `remote`."""

    paths: tuple[str, ...] = ()
    remote: str | None = None  # file:///dir or s3://bucket/prefix

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        return cls(paths=tuple(d.get("paths", ())), remote=d.get("remote"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"paths": list(self.paths)}
        if self.remote is not None:
            out["remote"] = self.remote
        return out


DEFAULT_CONDA_PLATFORMS = ("linux-64", "linux-aarch64")
# [model] environment = "conda": the environment is the locked model's conda.yaml.
MODEL_CONDA_ENV = "model:conda.yaml"


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaSpec:
    """A conda environment file (environment.yml, or MLflow's conda.yaml) locked per platform.

    `channels`, when given, replace the environment file's own channels (as conda-lock's -c).
    """

    environment: str  # a file in the project, or MODEL_CONDA_ENV
    channels: tuple[str, ...] = ()
    platforms: tuple[str, ...] = DEFAULT_CONDA_PLATFORMS

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CondaSpec:
        return cls(environment=d.get("environment", MODEL_CONDA_ENV),
                   channels=tuple(d.get("channels", ())),
                   platforms=tuple(d.get("platforms", DEFAULT_CONDA_PLATFORMS)))

    @property
    def file(self) -> str | None:
        """The environment file in the project; None when it is the model's conda.yaml."""
        return None if self.environment == MODEL_CONDA_ENV else self.environment

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"environment": self.environment, "platforms": list(self.platforms)}
        if self.channels:
            out["channels"] = list(self.channels)
        return out


def _conda_spec(d: dict[str, Any]) -> CondaSpec | None:
    """[conda], or the model's conda.yaml when [model] environment = "conda" (the [conda]
    table may then still give channels and platforms)."""
    from_model = d.get("model", {}).get("environment") == "conda"
    if "conda" not in d and not from_model:
        return None
    return CondaSpec.from_dict(d.get("conda", {}))


@dataclass(frozen=True, kw_only=True, slots=True)
class NixSpec:
    """The nixpkgs revision generated flakes build with (default: envbuild's own pin)."""

    nixpkgs_rev: str
    nixpkgs_nar_hash: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NixSpec:
        return cls(nixpkgs_rev=d["nixpkgs_rev"], nixpkgs_nar_hash=d["nixpkgs_nar_hash"])

    def to_dict(self) -> dict[str, Any]:
        return {"nixpkgs_rev": self.nixpkgs_rev, "nixpkgs_nar_hash": self.nixpkgs_nar_hash}


@dataclass(frozen=True, kw_only=True, slots=True)
class Spec:
    name: str
    python: str = "3.11"
    platforms: tuple[str, ...] = DEFAULT_PLATFORMS
    # Requirement sources, relative to the project: requirements files, or "pyproject.toml"
    # for PEP 621 [project].dependencies / Poetry's [tool.poetry.dependencies].
    requirements: tuple[str, ...] = ()
    index_url: str | None = None
    glibc: str = DEFAULT_GLIBC
    image: ImageSpec = field(default_factory=ImageSpec)
    model: ModelSpec | None = None
    data: DataSpec = field(default_factory=DataSpec)
    conda: CondaSpec | None = None
    nix: NixSpec | None = None
    # Where the spec was read from (relative file name, and "tool.envbuild" inside pyproject).
    file: str = "envbuild.toml"
    section: str = ""

    @property
    def image_name(self) -> str:
        return self.image.name or self.name

    def key(self, name: str) -> str:
        """The key path of `name` as the user wrote it, for error messages."""
        return f"{self.section}.{name}" if self.section else name

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, file: str = "envbuild.toml", section: str = "") -> Spec:
        return cls(
            name=d["name"],
            python=d.get("python", "3.11"),
            platforms=tuple(d.get("platforms", DEFAULT_PLATFORMS)),
            requirements=tuple(d.get("requirements", ())),
            index_url=d.get("index_url"),
            glibc=d.get("glibc", DEFAULT_GLIBC),
            image=ImageSpec.from_dict(d.get("image", {})),
            model=ModelSpec.from_dict(d["model"]) if "model" in d else None,
            data=DataSpec.from_dict(d.get("data", {})),
            conda=_conda_spec(d),
            nix=NixSpec.from_dict(d["nix"]) if "nix" in d else None,
            file=file,
            section=section,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "python": self.python,
            "platforms": list(self.platforms),
            "requirements": list(self.requirements),
            "glibc": self.glibc,
            "image": self.image.to_dict(),
            "data": self.data.to_dict(),
        }
        if self.index_url is not None:
            out["index_url"] = self.index_url
        if self.model is not None:
            out["model"] = self.model.to_dict()
        if self.conda is not None:
            out["conda"] = self.conda.to_dict()
        if self.nix is not None:
            out["nix"] = self.nix.to_dict()
        return out
