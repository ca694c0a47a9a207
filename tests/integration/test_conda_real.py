"""Conda for real: a local channel of real packages (conda-package-handling archives,
repodata by rattler's indexer), solved by py-rattler, written by conda-lock's writer, installed
by hash and built into an image with buildah. The machines reach no conda channel, which is why
the channel is built here.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conda import require_module

require_module("rattler")
require_module("conda_lock")
require_module("conda_package_handling")

from envbuild.conda.install import install_prefix
from envbuild.conda.lockfile import parse_conda_lock
from envbuild.conda.service import lock_conda
from envbuild.errors import IntegrityError, LockError, NetworkError
from envbuild.spec.model import CondaSpec
from tests.conda.channel import build_channel, build_package, index_channel
from tests.conda.fixtures import PACKAGES, serve

ENV = "name: demo\nchannels:\n  - {channel}\ndependencies:\n  - tinytool >=2\n"


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_channel(tmp_path_factory.mktemp("conda") / "channel", list(PACKAGES))


def make_project(root: Path, channel_url: str, deps: str = "  - tinytool >=2\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "environment.yml").write_text(
        f"name: demo\nchannels:\n  - {channel_url}\ndependencies:\n{deps}")
    return root


def test_lock_two_platforms_twice_same_bytes(channel: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", channel.as_uri())
    conda = CondaSpec(environment="environment.yml")
    pin, data = lock_conda(project, conda, cache_dir=tmp_path / "cache")
    pin2, data2 = lock_conda(project, conda, cache_dir=tmp_path / "cache2")
    assert data == data2 and pin == pin2
    lock = parse_conda_lock(data)
    assert lock.platforms == ("linux-64", "linux-aarch64")
    assert pin.packages == 4
    for platform in lock.platforms:
        names = {p.name: p for p in lock.for_platform(platform)}
        assert sorted(names) == ["tinylib", "tinytool"]
        assert f"/{platform}/tinylib-1.0-" in names["tinylib"].url
        assert "/noarch/tinytool-2.1-" in names["tinytool"].url
        for p in names.values():
            assert len(p.sha256) == 64 and len(p.md5) == 32


def test_lock_over_http(channel: Path, tmp_path: Path) -> None:
    with serve(channel.parent) as base:
        project = make_project(tmp_path / "p", f"{base}/channel")
        _, data = lock_conda(project, CondaSpec(environment="environment.yml"),
                             cache_dir=tmp_path / "cache")
        lock = parse_conda_lock(data)
        assert all(p.url.startswith(f"{base}/channel/") for p in lock.packages)
        n = install_prefix(lock, "linux-64", tmp_path / "prefix", cache=tmp_path / "pkgs")
    assert n == 2
    assert (tmp_path / "prefix/lib/tinylib.txt").read_text() == "tinylib linux-64\n"


def test_unsatisfiable_names_package_and_platform(channel: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", channel.as_uri(), "  - tinylib >=5\n")
    with pytest.raises(LockError) as err:
        lock_conda(project, CondaSpec(environment="environment.yml"), cache_dir=tmp_path / "c")
    assert "tinylib >=5" in err.value.message and "linux-64" in err.value.message


def test_package_missing_for_one_platform(channel: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", channel.as_uri(), "  - onlyx86\n")
    with pytest.raises(LockError) as err:
        lock_conda(project, CondaSpec(environment="environment.yml"), cache_dir=tmp_path / "c")
    assert "'onlyx86" in err.value.message and "linux-aarch64" in err.value.message
    pin, _ = lock_conda(project, CondaSpec(environment="environment.yml",
                                           platforms=("linux-64",)), cache_dir=tmp_path / "c")
    assert pin.platforms == ("linux-64",)


def test_unreachable_channel(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", "http://127.0.0.1:9/nothing")
    with pytest.raises(NetworkError) as err:
        lock_conda(project, CondaSpec(environment="environment.yml"), cache_dir=tmp_path / "c")
    assert "127.0.0.1:9/nothing" in err.value.message
    assert err.value.exit_code == 8


def test_tampered_package_fails_the_install_naming_it(channel: Path, tmp_path: Path) -> None:
    own = tmp_path / "channel"
    shutil.copytree(channel, own)
    project = make_project(tmp_path / "p", own.as_uri())
    _, data = lock_conda(project, CondaSpec(environment="environment.yml"),
                         cache_dir=tmp_path / "c")
    lock = parse_conda_lock(data)
    # The same file name with other bytes, re-indexed: what a compromised mirror serves.
    (own / "linux-64").joinpath(next(p.filename for p in lock.for_platform("linux-64")
                                     if p.name == "tinylib")).unlink()
    from dataclasses import replace

    tinylib = next(p for p in PACKAGES if p.name == "tinylib" and p.subdir == "linux-64")
    build_package(replace(tinylib, files={"lib/tinylib.txt": "evil\n"}), own)
    index_channel(own)
    prefix = tmp_path / "prefix"
    with pytest.raises(IntegrityError) as err:
        install_prefix(lock, "linux-64", prefix, cache=tmp_path / "pkgs")
    assert "tinylib" in err.value.message and "linux-64" in err.value.message
    assert err.value.exit_code == 7
    assert not prefix.exists()  # nothing linked


@pytest.fixture
def pinned_base(base_image: str, registry_digest: Callable[[str, str, str], str | None]) -> str:
    registry, _, rest = base_image.partition("/")
    repository, _, tag = rest.rpartition(":")
    digest = registry_digest(registry, repository, tag)
    assert digest
    return f"{registry}/{repository}@{digest}"


@pytest.fixture
def built_images() -> Iterator[list[str]]:
    ids: list[str] = []
    yield ids
    from envbuild.tools import Runner

    for image_id in ids:  # best effort: keep the shared storage small
        Runner().run(["buildah", "rmi", image_id], check=False)


def test_image_from_the_lock_repeats_its_digest(channel: Path, tmp_path: Path,
                                                 tool: Callable[[str], str], pinned_base: str,
                                                 built_images: list[str]) -> None:
    tool("buildah")
    from envbuild.conda.image import build_conda_image
    from envbuild.tools import Runner

    project = make_project(tmp_path / "p", channel.as_uri())
    _, data = lock_conda(project, CondaSpec(environment="environment.yml"),
                         cache_dir=tmp_path / "c")
    lock = parse_conda_lock(data)
    first = build_conda_image(lock, base=pinned_base, context=tmp_path / "ctx1",
                              cache=tmp_path / "pkgs1")
    built_images.append(first)
    # A fresh context and package cache, no layer cache: the same bytes all the same.
    second = build_conda_image(lock, base=pinned_base, context=tmp_path / "ctx2",
                               cache=tmp_path / "pkgs2", no_cache=True)
    assert first == second
    runner = Runner()
    ctr = runner.run(["buildah", "from", first]).stdout.strip()
    try:
        out = runner.run(["buildah", "run", "--isolation", "chroot", ctr, "--",
                          "cat", "/opt/conda/lib/tinylib.txt"])
    finally:
        runner.run(["buildah", "rm", ctr], check=False)
    assert out.stdout == "tinylib linux-64\n"
