"""A content-addressed wheel cache: every wheel fetched once by URL, checked against the lock.

Layout: <cache>/wheels/sha256/<hex>. A file is only ever renamed into place after its sha256
matched, so anything in the cache is verified; two runs fetching the same wheel at once each
write their own temp file and the second rename replaces identical bytes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from envbuild.errors import IntegrityError, NetworkError
from envbuild.lock.pylock import Wheel

if TYPE_CHECKING:
    import httpx

Status = Callable[[str], None]


def default_cache_dir() -> Path:
    env = os.environ.get("ENVBUILD_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "envbuild"


def cache_path(cache: Path, sha256: str) -> Path:
    return cache / "wheels" / "sha256" / sha256


def _download(client: httpx.Client, wheel: Wheel, dest_dir: Path) -> Path:
    """Stream the wheel into a temp file in dest_dir; raise IntegrityError on a hash mismatch."""
    import httpx

    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=".fetch-", suffix=".tmp")
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with client.stream("GET", wheel.url) as resp:
                    if resp.status_code != 200:
                        raise NetworkError(
                            f"fetching {wheel.name} failed: HTTP {resp.status_code} from {wheel.url}",
                            hint="check that the package index is reachable; the lock pins this URL",
                        )
                    for chunk in resp.iter_bytes(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
            except httpx.HTTPError as exc:
                raise NetworkError(f"fetching {wheel.name} failed: {exc}",
                                   hint="check that the package index is reachable") from None
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != wheel.sha256:
            raise IntegrityError(
                f"{wheel.name} does not match the lock: downloaded sha256 {digest.hexdigest()}, "
                f"the lock pins {wheel.sha256} ({wheel.url})",
                hint="the file behind the URL changed or the download was tampered with; "
                "nothing was built. Re-lock only if you trust the new file",
            )
        os.chmod(tmp, 0o444)
        return tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fetch_wheels(wheels: Iterable[Wheel], cache: Path, *, status: Status = lambda _: None,
                 client: httpx.Client | None = None) -> dict[str, Path]:
    """sha256 -> verified cache path for every wheel; downloads only the missing ones."""
    wanted = {w.sha256: w for w in wheels}
    out = {sha: cache_path(cache, sha) for sha in wanted}
    missing = [wanted[sha] for sha, path in sorted(out.items()) if not path.is_file()]
    if not missing:
        return out
    import httpx

    directory = cache / "wheels" / "sha256"
    directory.mkdir(parents=True, exist_ok=True)
    own = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True)
    try:
        for i, wheel in enumerate(missing, 1):
            status(f"fetching wheel {i}/{len(missing)}: {wheel.name}")
            tmp = _download(http, wheel, directory)
            os.replace(tmp, out[wheel.sha256])
    finally:
        if own:
            http.close()
    return out


def verify_cached(path: Path, sha256: str) -> bool:
    """Re-hash a cached file (used when linking into a context, against a damaged cache)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest() == sha256
