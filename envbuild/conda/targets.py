"""Which build targets can carry a conda environment. Pure."""

from __future__ import annotations

from envbuild.errors import LockError
from envbuild.lock.bundle import EnvbuildLock

# Targets that install the conda packages: `envbuild conda-build` (and `conda-install`). The
# others would build a bundle without them, so they refuse rather than build the wrong thing.
UNSUPPORTED = {
    "nix": "the nix target",
    "docker": "`envbuild generate` / `envbuild build` (the Dockerfile target)",
}


def refuse_conda(lock: EnvbuildLock, target: str) -> None:
    """A target that cannot install conda packages must not build a bundle without them."""
    if lock.conda and target in UNSUPPORTED:
        raise LockError(
            f"{UNSUPPORTED[target]} does not support conda environments yet: this bundle pins "
            f"{lock.conda.get('packages', '?')} conda packages ({lock.conda.get('lock_file')})",
            hint="build an image with `envbuild conda-build` instead",
        )
