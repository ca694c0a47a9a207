from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from envbuild.conda.lockfile import CondaLock, CondaPackage
from envbuild.lock.assemble import assemble
from envbuild.lock.bundle import ImagePin
from envbuild.lock.diff import diff_bundles
from envbuild.lock.loaded import Bundle, parse_bundle

GOLDEN = Path(__file__).parent.parent / "golden" / "basic"
BASE = "r/p@sha256:" + "a" * 64


def bundle(candidates: list[dict[str, Any]], *, base: str = BASE,
           model: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> Bundle:
    _, files = assemble(name="d", python="3.11", platforms=("linux/amd64", "linux/arm64"),
                        glibc="2.36", index_url=None, candidates=candidates,
                        image=ImagePin(name="d", base_ref="r/p:1", base=base),
                        inputs={"envbuild.toml": "sha256:" + "0" * 64}, resolver="uv",
                        model=model, data=data)
    return parse_bundle(files["envbuild.lock"].decode(), files["pylock.toml"])


def candidates() -> list[dict[str, Any]]:
    return json.loads((GOLDEN / "candidates.json").read_text())


def test_no_changes() -> None:
    assert diff_bundles(bundle(candidates()), bundle(candidates())) == []


def test_package_bump_model_version_and_more() -> None:
    old_c = candidates()
    new_c = copy.deepcopy(old_c)
    numpy = next(c for c in new_c if c["name"] == "numpy")
    numpy["version"] = "2.4.0"
    for wheel in numpy["wheels"]:
        wheel["url"] = wheel["url"].replace("2.3.4", "2.4.0")
    zipp = next(c for c in new_c if c["name"] == "Zipp")
    zipp["wheels"][0]["hashes"]["sha256"] = "f" * 64  # same version, other bytes
    new_c = [c for c in new_c if c["name"] != "Quote_Pkg"]
    new_c.append({"name": "six", "version": "1.16.0", "wheels": [
        {"url": "https://x/six-1.16.0-py2.py3-none-any.whl", "hashes": {"sha256": "e" * 64}}]})
    old = bundle(old_c, model={"name": "churn", "version": "3"}, data={"train.csv": "sha256:1"})
    new = bundle(new_c, base="r/p@sha256:" + "b" * 64, model={"name": "churn", "version": "4"},
                 data={"train.csv": "sha256:2"})
    described = [c.describe() for c in diff_bundles(old, new)]
    assert described == [
        "packages: numpy upgraded 2.3.4 -> 2.4.0",
        "packages: quote-pkg removed (was 0.1)",
        "packages: six added (1.16.0)",
        "packages: zipp 4.1.2: same version, different wheel hashes",
        f"image: base changed {BASE} -> r/p@sha256:{'b' * 64}",
        "model: version changed 3 -> 4",
        "data: train.csv changed sha256:1 -> sha256:2",
    ]
    back = [c.kind for c in diff_bundles(new, old) if c.key == "numpy"]
    assert back == ["downgraded"]


def test_two_locks_of_the_example() -> None:
    """The example's committed lock against itself with one package bumped and the model moved
    to another version: diff names exactly those two changes."""
    import dataclasses

    from envbuild.files import sha256_bytes
    from envbuild.lock.bundle import render_lock
    from envbuild.lock.pylock import render_pylock

    churn = Path(__file__).resolve().parents[2] / "examples" / "churn"
    old = parse_bundle((churn / "envbuild.lock").read_text(), (churn / "pylock.toml").read_bytes())
    bumped = []
    for pkg in old.python.packages:
        if pkg.name == "pandas":
            version = pkg.version + ".post1"
            wheels = tuple(dataclasses.replace(w, name=w.name.replace(pkg.version, version),
                                               url=w.url.replace(pkg.version, version),
                                               sha256="0" * 64) for w in pkg.wheels)
            pkg = dataclasses.replace(pkg, version=version, wheels=wheels)
        bumped.append(pkg)
    pylock = render_pylock(dataclasses.replace(old.python, packages=tuple(bumped)))
    model = {**old.lock.model, "version": "2"}
    lock = dataclasses.replace(
        old.lock, model=model,
        python=dataclasses.replace(old.lock.python, lock_digest=sha256_bytes(pylock)))
    new = parse_bundle(render_lock(lock).decode(), pylock)
    pandas = next(p.version for p in old.python.packages if p.name == "pandas")
    assert [c.describe() for c in diff_bundles(old, new)] == [
        f"packages: pandas upgraded {pandas} -> {pandas}.post1",
        "model: version changed 1 -> 2",
    ]


def conda_lock(*packages: tuple[str, str, str, str]) -> CondaLock:
    return CondaLock(channels=("file:///c",), platforms=("linux-64",), specs=(), sources=(),
                     packages=tuple(CondaPackage(name=n, version=v, build=b, platform="linux-64",
                                                 url=f"file:///c/{n}-{v}-{b}.conda", sha256=h,
                                                 md5="0" * 32) for n, v, b, h in packages))


def test_conda_packages_per_platform() -> None:
    same = bundle(candidates())
    old = conda_lock(("tinylib", "1.0", "h0", "a" * 64), ("tinytool", "2.1", "0", "b" * 64),
                     ("gone", "1", "0", "c" * 64))
    new = conda_lock(("tinylib", "1.0", "h1", "d" * 64), ("tinytool", "2.0", "0", "e" * 64),
                     ("fresh", "0.1", "0", "f" * 64))
    described = [c.describe() for c in diff_bundles(same, same, old_conda=old, new_conda=new)]
    assert described == [
        "conda: fresh (linux-64) added (0.1)",
        "conda: gone (linux-64) removed (was 1)",
        "conda: tinylib (linux-64) 1.0: same version, different build or package hash",
        "conda: tinytool (linux-64) downgraded 2.1 -> 2.0",
    ]
    assert diff_bundles(same, same, old_conda=old, new_conda=old) == []
