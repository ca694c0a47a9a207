"""The [conda] table of envbuild.lock. Pure.

It names the environment file and conda-lock.yml and records conda-lock.yml's sha256, so the
conda packages (every url and sha256 in that file) enter the bundle id. The environment file's
own digest sits in [inputs] with the other input files: editing a comment makes the lock stale,
not a new bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaPin:
    environment: str  # the environment file, relative to the project
    lock_file: str  # conda-lock.yml
    lock_digest: str  # "sha256:..." of conda-lock.yml's bytes
    channels: tuple[str, ...]
    platforms: tuple[str, ...]
    packages: int  # conda packages over all platforms

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CondaPin:
        return cls(environment=d["environment"], lock_file=d["lock_file"],
                   lock_digest=d["lock_digest"], channels=tuple(d["channels"]),
                   platforms=tuple(d["platforms"]), packages=d["packages"])

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "lock_file": self.lock_file,
                "lock_digest": self.lock_digest, "channels": list(self.channels),
                "platforms": list(self.platforms), "packages": self.packages}
