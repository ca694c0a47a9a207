"""The index's simple API in its JSON form (PEP 691): every file of a project, with hashes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from packaging.utils import canonicalize_name

from envbuild.errors import LockError, NetworkError

ACCEPT = "application/vnd.pypi.simple.v1+json"


def fetch_project_files(index_url: str, names: list[str]) -> dict[str, list[dict[str, Any]]]:
    """name -> the `files` list of its PEP 691 project page, fetched concurrently."""
    import httpx

    base = index_url.rstrip("/")
    with httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=True) as client:

        def one(name: str) -> tuple[str, list[dict[str, Any]]]:
            url = f"{base}/{canonicalize_name(name)}/"
            try:
                resp = client.get(url, headers={"Accept": ACCEPT})
            except httpx.HTTPError as exc:
                raise NetworkError(f"cannot reach the package index at {base}: {exc}",
                                   hint="check the network and index_url in the spec") from None
            if resp.status_code == 404:
                raise LockError(f"{name} is not on the index {base}", hint="check the name")
            if resp.status_code != 200 or ACCEPT not in resp.headers.get("content-type", ""):
                raise NetworkError(
                    f"the index {base} did not answer {name}'s page in PEP 691 JSON "
                    f"(HTTP {resp.status_code}, {resp.headers.get('content-type', '?')})",
                    hint="the pip-tools backend needs an index with the JSON simple API; "
                    "use the uv resolver otherwise")
            return name, list(resp.json().get("files", []))

        with ThreadPoolExecutor(max_workers=8) as pool:
            return dict(pool.map(one, sorted(set(names))))
