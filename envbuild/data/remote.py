"""Remotes through fsspec: a local directory (`file://` or a plain path) or S3 (`s3://`).

The layout is the cache's: `<url>/<algorithm>/<ab>/<cdef...>`. push lists what the remote holds
once and sends only what is missing; pull downloads into the cache's temp dir and verifies every
object before it enters the cache (ObjectCache.adopt). A `file://` object is written to a temp
name and renamed; an S3 PUT is atomic by itself. S3 credentials and endpoint come from the usual
AWS settings (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL for S3-compatible
stores such as MinIO, or ENVBUILD_S3_ENDPOINT_URL).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from envbuild.data.errors import DataError
from envbuild.errors import NetworkError

PROTOCOLS = ("file", "s3")


def check_url(url: str) -> str:
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    if protocol not in PROTOCOLS:
        raise DataError(f"unsupported remote {url!r}", hint="use file:///path or s3://bucket/prefix")
    return protocol


class Remote:
    def __init__(self, url: str) -> None:
        import fsspec  # type: ignore[import-untyped]

        self.url = url
        self.protocol = check_url(url)
        options: dict[str, Any] = {}
        if self.protocol == "s3":
            endpoint = os.environ.get("ENVBUILD_S3_ENDPOINT_URL") or os.environ.get(
                "AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            if endpoint:
                options["endpoint_url"] = endpoint
            options["skip_instance_cache"] = True
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:
            raise DataError(f"the {self.protocol} remote needs an extra package ({exc.name})",
                            hint="pip install 'envbuild[s3]'") from None
        self.root = root.rstrip("/")

    def key(self, algorithm: str, name: str) -> str:
        return f"{self.root}/{algorithm}/{name[:2]}/{name[2:]}"

    def _fail(self, exc: BaseException, what: str) -> NetworkError:
        return NetworkError(f"remote {self.url}: {what} failed: {exc}",
                            hint="check the URL, the credentials and that the remote answers")

    def existing(self, algorithm: str) -> set[str]:
        """The object names under `<url>/<algorithm>/` (one listing, not one request per object)."""
        base = f"{self.root}/{algorithm}/"
        try:
            found = self.fs.find(base.rstrip("/"))
        except FileNotFoundError:
            return set()
        except Exception as exc:  # noqa: BLE001 (fsspec backends raise their own types)
            raise self._fail(exc, "listing") from None
        names = set()
        for path in found:
            rel = path[len(base):] if path.startswith(base) else path.split(f"/{algorithm}/", 1)[-1]
            head, _, tail = rel.partition("/")
            if len(head) == 2 and tail and "/" not in tail:
                names.add(head + tail)
        return names

    def upload(self, items: Sequence[tuple[Path, str, str]]) -> None:
        """Send (local object, algorithm, name) items."""
        if not items:
            return
        try:
            if self.protocol == "file":
                for local, algorithm, name in items:
                    key = self.key(algorithm, name)
                    tmp = f"{key}.tmp-{os.urandom(6).hex()}"
                    self.fs.makedirs(os.path.dirname(key), exist_ok=True)
                    self.fs.put_file(str(local), tmp)
                    self.fs.mv(tmp, key)
            else:
                self.fs.put([str(i[0]) for i in items], [self.key(i[1], i[2]) for i in items])
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DataError(f"remote disk full ({exc})", path=self.url,
                                hint="free space on the remote; objects already sent stay") from None
            raise self._fail(exc, "upload") from None
        except Exception as exc:  # noqa: BLE001 (botocore, aiohttp, ... errors)
            raise self._fail(exc, "upload") from None

    def download(self, items: Sequence[tuple[str, str, Path]]) -> None:
        """Fetch (algorithm, name, local temp path) items; the caller verifies them."""
        if not items:
            return
        try:
            self.fs.get([self.key(a, n) for a, n, _ in items], [str(p) for _, _, p in items])
        except FileNotFoundError as exc:
            raise DataError(f"object missing on the remote {self.url}: {exc}",
                            hint="push it from a machine that has it") from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise  # this machine's disk, not the remote: the caller names the cache
            raise self._fail(exc, "download") from None
        except Exception as exc:  # noqa: BLE001 (botocore, aiohttp, ... errors)
            raise self._fail(exc, "download") from None
