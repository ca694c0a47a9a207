"""The build record, `envbuild.build.json` next to the lock: what each build produced. Pure.

One entry per (builder, platform). `image_id` is the digest that must repeat: the image's
config digest (`sha256:` of the config JSON, what `buildah images --digests`' IMAGE ID and
`docker image inspect .Id` show). It covers every layer (their uncompressed diff_ids), the
history and the labels, and does not depend on how a registry or archive compresses layers;
a manifest digest does. `layers` are the diff_ids, so a mismatch names the layer at once.
Canonical JSON: sorted keys, two-space indent, one trailing newline; no times, no paths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from envbuild.errors import LockError

RECORD_FILE = "envbuild.build.json"
RECORD_VERSION = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageBuild:
    builder: str
    platform: str
    image_id: str
    tag: str
    layers: tuple[str, ...]
    base: str
    reproducible: bool  # False for docker's classic builder: its id does not repeat
    oci_archive_digest: str | None = None  # manifest digest inside an exported OCI archive

    @property
    def key(self) -> str:
        return f"{self.builder} {self.platform}"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageBuild:
        return cls(builder=d["builder"], platform=d["platform"], image_id=d["image_id"],
                   tag=d["tag"], layers=tuple(d["layers"]), base=d["base"],
                   reproducible=d["reproducible"], oci_archive_digest=d.get("oci_archive_digest"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "builder": self.builder, "platform": self.platform, "image_id": self.image_id,
            "tag": self.tag, "layers": list(self.layers), "base": self.base,
            "reproducible": self.reproducible,
        }
        if self.oci_archive_digest:
            out["oci_archive_digest"] = self.oci_archive_digest
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildRecord:
    bundle: str  # the bundle id the builds were made from
    builds: dict[str, ImageBuild] = field(default_factory=dict)

    def with_build(self, build: ImageBuild) -> BuildRecord:
        return BuildRecord(bundle=self.bundle, builds={**self.builds, build.key: build})

    def to_dict(self) -> dict[str, Any]:
        return {"version": RECORD_VERSION, "bundle": self.bundle,
                "builds": {k: self.builds[k].to_dict() for k in sorted(self.builds)}}


def render_record(record: BuildRecord) -> bytes:
    return (json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n").encode()


def parse_record(text: str) -> BuildRecord:
    try:
        data = json.loads(text)
        if data.get("version") != RECORD_VERSION:
            raise LockError(f"{RECORD_FILE} has version {data.get('version')!r}; this envbuild "
                            f"reads {RECORD_VERSION}", hint="run `envbuild build` again")
        return BuildRecord(bundle=data["bundle"],
                           builds={k: ImageBuild.from_dict(v) for k, v in data["builds"].items()})
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise LockError(f"{RECORD_FILE} is damaged: {exc!r}",
                        hint="delete it and run `envbuild build` again") from None
