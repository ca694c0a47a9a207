"""Rendered SBOMs, cached by what they are a function of. The shell part of envbuild.generate.sbom.

Rendering the SBOM through cyclonedx-python-lib (import included) takes about 0.2 s, most of
envbuild's own time in a code-only `envbuild build` and in `envbuild verify`. Its bytes depend
on nothing but the bundle id (which covers every pinned wheel, the image and the name), the
platform and the generator itself, so those three name the cached file. The file's own name
carries the sha256 of its bytes, checked on every read: a damaged entry is rendered again.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import metadata
from pathlib import Path

from envbuild.files import write_atomic
from envbuild.generate import sbom
from envbuild.lock.loaded import Bundle


@cache
def _generator() -> str:
    """The generator's identity: its source and the CycloneDX library's version."""
    source = Path(sbom.__file__).read_bytes()
    return f"{hashlib.sha256(source).hexdigest()} cyclonedx-python-lib {metadata.version('cyclonedx-python-lib')}"


def sbom_key(bundle: Bundle, platform: str) -> str:
    doc = json.dumps([bundle.lock.bundle_id, platform, _generator()])
    return hashlib.sha256(doc.encode()).hexdigest()


def cached_sbom(bundle: Bundle, platform: str, cache_dir: Path) -> bytes:
    """render_sbom(bundle, platform), from the cache when an intact entry is there."""
    folder = cache_dir / "sbom" / sbom_key(bundle, platform)
    for entry in sorted(folder.glob("*.cdx.json")) if folder.is_dir() else ():
        data = entry.read_bytes()
        if hashlib.sha256(data).hexdigest() == entry.name.removesuffix(".cdx.json"):
            return data
        entry.unlink(missing_ok=True)  # damaged: never served
    data = sbom.render_sbom(bundle, platform)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / f"{hashlib.sha256(data).hexdigest()}.cdx.json", data)
    except OSError:
        pass  # a read-only or full cache costs the next run 0.2 s, nothing else
    return data
