"""Fixtures for integration tests: real tools and a real registry on loopback.

`bash scripts/setup.sh` installs the tools, starts the registry on 127.0.0.1:5000 and pushes the
debootstrap base image. Without them a test is skipped on a developer's machine and fails in CI
(CI=true), where a missing service is a broken set-up, not a reason to pass. `reflink_dir` is a
loop-mounted XFS (root and mkfs.xfs needed) for the tests of copy-on-write clones.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote, urljoin

import httpx
import pytest

REGISTRY = os.environ.get("ENVBUILD_REGISTRY", "127.0.0.1:5000")
BASE_REPOSITORY = "envbuild/python"
BASE_TAG = "3.11-bookworm"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SETUP_HINT = "run `bash scripts/setup.sh` (as root) first"
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under tests/integration talks to real tools or services.
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def missing(reason: str) -> NoReturn:
    """Skip for a developer; fail in CI, where everything must have been set up."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: required here; scripts/setup.sh should provide it)",
                    pytrace=False)
    pytest.skip(f"{reason}; {SETUP_HINT}")


def require_tool(name: str) -> str:
    """The path of tool `name`, from PATH or the running venv's bin dir; skip/fail when absent."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        missing(f"{name} is not installed")
    return found


@pytest.fixture(scope="session")
def tool() -> Callable[[str], str]:
    """`require_tool` for test modules (conftest is not imported from tests)."""
    return require_tool


def _client() -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0))


def manifest_digest(registry: str, repository: str, reference: str) -> str | None:
    """The digest the registry reports (Docker-Content-Digest) for an OCI manifest, or None."""
    with _client() as client:
        resp = client.head(f"http://{registry}/v2/{repository}/manifests/{reference}",
                           headers={"Accept": OCI_MANIFEST})
    if resp.status_code != 200:
        return None
    digest: str | None = resp.headers.get("docker-content-digest")
    return digest


@pytest.fixture(scope="session")
def registry() -> str:
    """host:port of the container registry on loopback, once /v2/ answers."""
    problem = None
    try:
        with _client() as client:
            resp = client.get(f"http://{REGISTRY}/v2/")
        if resp.status_code != 200:
            problem = f"http://{REGISTRY}/v2/ answered HTTP {resp.status_code}, not a registry"
    except httpx.HTTPError as exc:
        problem = f"no container registry answers on http://{REGISTRY}/v2/ ({exc})"
    if problem:
        missing(problem)  # outside the except block: no chained traceback in the report
    return REGISTRY


@pytest.fixture(scope="session")
def base_image(registry: str) -> str:
    """The debootstrap Python base image's tag reference, checked to be in the registry."""
    if manifest_digest(registry, BASE_REPOSITORY, BASE_TAG) is None:
        missing(f"the registry has no {registry}/{BASE_REPOSITORY}:{BASE_TAG}")
    return f"{registry}/{BASE_REPOSITORY}:{BASE_TAG}"


def _blob(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push_blob(client: httpx.Client, base: str, repository: str, data: bytes) -> str:
    """Monolithic upload: POST for an upload URL, then one PUT with the bytes and their digest."""
    digest = _blob(data)
    start = client.post(f"{base}/v2/{repository}/blobs/uploads/")
    assert start.status_code == 202, (start.status_code, start.text)
    location = urljoin(f"{base}/", start.headers["location"])
    sep = "&" if "?" in location else "?"
    done = client.put(f"{location}{sep}digest={quote(digest)}", content=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, (done.status_code, done.text)
    return digest


def _tiny_layer() -> bytes:
    """An uncompressed layer tar holding one file of random bytes: a digest of its own."""
    buf = io.BytesIO()
    payload = os.urandom(16)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("envbuild-test/random")
        info.size, info.mode, info.mtime = len(payload), 0o644, 0
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def push_tiny_image(client: httpx.Client, base: str, repository: str, tag: str) -> str:
    """Push a fresh single-layer image as `repository:tag` to the registry at `base` (a URL)
    through `client` (which carries any login); the manifest's digest."""
    layer = _tiny_layer()
    config = _canonical({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": [_blob(layer)]},
    })
    layer_digest = _push_blob(client, base, repository, layer)
    config_digest = _push_blob(client, base, repository, config)
    manifest = _canonical({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": len(layer)}],
    })
    put = client.put(f"{base}/v2/{repository}/manifests/{tag}", content=manifest,
                     headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 201, (put.status_code, put.text)
    return _blob(manifest)


@pytest.fixture
def pushed_image(registry: str) -> Iterator[tuple[str, str]]:
    """Push a fresh single-layer image under a unique repository; yield (reference, digest).

    The digest is the one the registry reports for the manifest (Docker-Content-Digest on a HEAD
    with the OCI Accept header), i.e. what `envbuild lock` should pin.
    """
    repository = f"envbuild-test/img-{uuid.uuid4().hex[:12]}"
    tag = "v1"
    base = f"http://{registry}"
    with _client() as client:
        pushed = push_tiny_image(client, base, repository, tag)
    digest = manifest_digest(registry, repository, tag)
    assert digest == pushed, (digest, pushed)
    yield f"{registry}/{repository}:{tag}", digest
    # Best effort: drop the manifest (the registry may not allow deletes; blobs stay until GC).
    try:
        with _client() as client:
            client.delete(f"{base}/v2/{repository}/manifests/{digest}")
    except httpx.HTTPError:
        pass


@pytest.fixture(scope="session")
def registry_digest() -> Callable[[str, str, str], str | None]:
    """`manifest_digest` as a fixture, for tests: (registry, repository, tag or digest)."""
    return manifest_digest


# ---- a reflink-capable file system --------------------------------------------------------------

XFS_IMAGE_BYTES = 1 << 30  # sparse: the disk holds only what the tests write
_FICLONE = 0x40049409  # linux/fs.h: ioctl(dest_fd, FICLONE, src_fd)


def _quiet(argv: list[str]) -> str | None:
    """Run `argv`; None when it succeeded, else what it said (the last lines) and its exit code."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode == 0:
        return None
    said = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return f"`{' '.join(argv)}` exited {proc.returncode}: {' / '.join(said) or 'no output'}"


def _reflink_problem(directory: Path) -> str | None:
    """Why FICLONE does not work in `directory`, or None when a clone succeeds."""
    src, dest = directory / ".probe-src", directory / ".probe-dest"
    try:
        src.write_bytes(b"reflink probe\n")
        with open(src, "rb") as s, open(dest, "wb") as d:
            fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())
        return None
    except OSError as exc:
        return f"FICLONE in {directory} failed: {exc.strerror}"
    finally:
        src.unlink(missing_ok=True)
        dest.unlink(missing_ok=True)


def _unmount(mountpoint: Path) -> str | None:
    """umount (a few tries: a process that just exited may still hold it), else lazily."""
    problem = None
    for _ in range(10):
        problem = _quiet(["umount", str(mountpoint)])
        if problem is None:
            return None
        time.sleep(0.2)
    _quiet(["umount", "--lazy", str(mountpoint)])
    return problem


def _sweep_stale_reflink_mounts() -> None:
    """Unmount the XFS mounts of earlier sessions that were killed before their teardown.

    Only mounts made by `reflink_dir` (`.../reflink<N>/mnt` beside an `owner.pid`) whose pytest
    process is gone: another session running now keeps its mount.
    """
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    for point in map(Path, points):
        if point.name != "mnt" or not point.parent.name.startswith("reflink"):
            continue
        try:
            os.kill(int((point.parent / "owner.pid").read_text()), 0)
            continue  # its session is still running
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # not one of ours, or unreadable: leave it
        if _unmount(point) is None:
            (point.parent / "xfs.img").unlink(missing_ok=True)


@pytest.fixture(scope="session")
def reflink_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory on a file system with reflinks: a fresh XFS (`mkfs.xfs -m reflink=1`) in a
    1 GiB sparse image under the session's temp dir, loop-mounted for the whole session, then
    unmounted and deleted (also when tests failed). Shared by the session: a test works in a
    directory of its own in it (`reflink_tmp_path`).

    Needs root, mkfs.xfs (xfsprogs, which scripts/setup.sh installs) and a free loop device:
    skipped without them on a developer's machine, failed in CI (CI=true).
    """
    if os.geteuid() != 0:
        missing("a loop-mounted XFS (for reflinks) needs root: mount -o loop")
    mkfs = require_tool("mkfs.xfs")
    for name in ("mount", "umount"):
        require_tool(name)
    _sweep_stale_reflink_mounts()
    base = tmp_path_factory.mktemp("reflink")
    image, mountpoint = base / "xfs.img", base / "mnt"
    mountpoint.mkdir()
    (base / "owner.pid").write_text(f"{os.getpid()}\n")
    try:
        with open(image, "wb") as f:
            f.truncate(XFS_IMAGE_BYTES)
        problem = _quiet([mkfs, "-q", "-f", "-m", "reflink=1", str(image)])
        if problem is not None:
            missing(f"cannot make an XFS file system with reflinks: {problem}")
        problem = _quiet(["mount", "-o", "loop", str(image), str(mountpoint)])
        if problem is not None:
            missing(f"cannot loop-mount an XFS image (no loop device?): {problem}")
        try:
            problem = _reflink_problem(mountpoint)
            if problem is not None:
                missing(f"the loop-mounted XFS has no reflinks: {problem}")
            yield mountpoint
        finally:
            problem = _unmount(mountpoint)
            if problem is not None:
                pytest.fail(f"{mountpoint} was busy at the end of the session (a test's process "
                            f"still using it?); unmounted lazily: {problem}", pytrace=False)
    finally:
        image.unlink(missing_ok=True)


@pytest.fixture
def reflink_tmp_path(reflink_dir: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """`tmp_path` on the reflink file system (`reflink_dir`): a new directory, removed after."""
    name = re.sub(r"[^\w.-]", "_", request.node.name)[:60]
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=reflink_dir))
    yield path
    shutil.rmtree(path, ignore_errors=True)
