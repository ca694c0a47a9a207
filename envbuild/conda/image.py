"""An image holding a locked conda environment, built with buildah. Argv and Dockerfile pure.

The prefix is installed on the host (install.py: every package checked by sha256 against
conda-lock.yml, no solve) and COPYed into the image, so the build itself needs no network and
no conda tooling in the base image. `--timestamp 0` clamps file times and `created`: the same
lock and base give the same image id on every rebuild. Two more flags keep it so (seen on
buildah 1.28): `--format oci`, because the Docker config records a random container id and
hostname; `--layers=false`, because with intermediate images each step's history names the
previous step's (random) image id. The image is the base's layers plus one conda layer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envbuild.conda.install import IMAGE_PREFIX
from envbuild.conda.lockfile import CondaLock
from envbuild.tools import Runner

PREFIX_DIR = "conda-prefix"  # inside the build context
_LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?/")
_PLATFORMS = {"linux-64": "linux/amd64", "linux-aarch64": "linux/arm64"}
Status = Callable[[str], None]


VENV = "/opt/venv"
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The pip part, as the pip path's Dockerfile installs it (templates/Dockerfile.j2): wheels
# checked on the host, installed with --require-hashes and no index, hash-based .pyc files.
_PIP_STAGE = """\
FROM {base} AS deps
COPY wheels/ /tmp/envbuild/wheels/
RUN python3 -m venv --without-pip {venv} \\
 && for wheel in /usr/share/python-wheels/pip-*.whl /usr/local/lib/python3*/ensurepip/_bundled/pip-*.whl; do \\
      [ -f "$wheel" ] && break; \\
    done \\
 && {venv}/bin/python "$wheel/pip" install \\
      --no-index --find-links /tmp/envbuild/wheels --require-hashes --no-deps \\
      --no-cache-dir --no-compile --disable-pip-version-check --no-warn-script-location \\
      -r /tmp/envbuild/wheels/requirements.txt \\
 && find {venv} -name __pycache__ -prune -exec rm -rf {{}} + \\
 && {venv}/bin/python -m compileall -q -j 1 --invalidation-mode unchecked-hash {venv}/lib \\
 && rm -rf /tmp/envbuild

"""


def render_dockerfile(*, base: str, prefix: str = IMAGE_PREFIX, pip: bool = False) -> bytes:
    """The conda image: the locked conda prefix, then (with `pip`) a venv of the locked wheels
    whose Python sees nothing but them. conda's bin comes first on PATH."""
    if "\n" in base or "\n" in prefix:
        raise ValueError("newline in an image reference or prefix")
    head = _PIP_STAGE.format(base=base, venv=VENV) if pip else ""
    path = f"{prefix}/bin:{VENV}/bin:{_PATH}" if pip else f"{prefix}/bin:{_PATH}"
    venv_copy = f"COPY --from=deps {VENV} {VENV}\n" if pip else ""
    return (
        f"{head}FROM {base}\n"
        f"COPY {PREFIX_DIR}/ {prefix}/\n"
        f"{venv_copy}"
        f'ENV CONDA_PREFIX="{prefix}" PATH="{path}"\n'
    ).encode()


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaImageOptions:
    context: str
    base: str  # pinned by digest
    platform: str = "linux-64"
    iidfile: str = ""
    storage_driver: str | None = None
    no_cache: bool = False  # rerun every step (a rebuild that proves the digest repeats)


def build_argv(opts: CondaImageOptions) -> list[str]:
    argv = ["buildah"]
    if opts.storage_driver:
        argv += ["--storage-driver", opts.storage_driver]
    argv += ["bud", "--isolation", "chroot", "--format", "oci",
             "--platform", _PLATFORMS[opts.platform], "--timestamp", "0", "--layers=false",
             "--iidfile", opts.iidfile, "--file", f"{opts.context}/Dockerfile"]
    if opts.no_cache:
        argv.append("--no-cache")
    if _LOOPBACK.match(opts.base):
        argv.append("--tls-verify=false")
    return [*argv, opts.context]


def build_conda_image(lock: CondaLock, *, base: str, context: Path, cache: Path,
                      platform: str = "linux-64", no_cache: bool = False,
                      wheels: dict[str, Path] | None = None, wheel_requirements: bytes = b"",
                      runner: Runner | None = None, status: Status = lambda _: None) -> str:
    """Install the platform's packages into context/conda-prefix, link the checked wheels
    (file name -> verified path) into context/wheels, build; return the image id."""
    import shutil

    from envbuild.conda.install import install_prefix
    from envbuild.files import write_atomic

    context.mkdir(parents=True, exist_ok=True)
    install_prefix(lock, platform, context / PREFIX_DIR, cache=cache, status=status)
    if (context / "wheels").exists():
        shutil.rmtree(context / "wheels")
    if wheels:
        (context / "wheels").mkdir()
        for name, source in sorted(wheels.items()):
            shutil.copyfile(source, context / "wheels" / name)
        write_atomic(context / "wheels" / "requirements.txt", wheel_requirements)
    write_atomic(context / "Dockerfile", render_dockerfile(base=base, pip=bool(wheels)))
    iidfile = context / ".iid"
    opts = CondaImageOptions(context=str(context), base=base, platform=platform,
                             iidfile=str(iidfile), no_cache=no_cache,
                             storage_driver=os.environ.get("ENVBUILD_STORAGE_DRIVER") or None)
    status(f"building the conda image for {platform} from {base}")
    (runner or Runner()).run(build_argv(opts), what="buildah bud", timeout=600)
    return iidfile.read_text().strip()
