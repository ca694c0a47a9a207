"""The SBOM cache: the same bytes as rendering, keyed by bundle id, platform and generator."""

from __future__ import annotations

from pathlib import Path

import pytest

from envbuild.generate import sbom, sbom_cache
from tests.unit.test_generate_docker import bundle_from, load_case


def test_a_cached_sbom_is_the_rendered_one_and_is_not_rendered_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = bundle_from(load_case("docker_basic"))
    rendered = sbom.render_sbom(bundle, "linux/amd64")
    assert sbom_cache.cached_sbom(bundle, "linux/amd64", tmp_path) == rendered

    def refuse(*_: object) -> bytes:
        raise AssertionError("rendered again although the cache holds it")

    monkeypatch.setattr(sbom, "render_sbom", refuse)
    assert sbom_cache.cached_sbom(bundle, "linux/amd64", tmp_path) == rendered
    with pytest.raises(AssertionError, match="rendered again"):  # another platform, another key
        sbom_cache.cached_sbom(bundle, "linux/arm64", tmp_path)


def test_a_damaged_entry_is_never_served(tmp_path: Path) -> None:
    bundle = bundle_from(load_case("docker_basic"))
    good = sbom_cache.cached_sbom(bundle, "linux/amd64", tmp_path)
    [entry] = (tmp_path / "sbom").rglob("*.cdx.json")
    damaged = good.replace(b"pkg:pypi/", b"pkg:evil/", 1)
    assert damaged != good
    entry.write_bytes(damaged)
    assert sbom_cache.cached_sbom(bundle, "linux/amd64", tmp_path) == good
    assert [p.read_bytes() for p in (tmp_path / "sbom").rglob("*.cdx.json")] == [good]


def test_the_key_follows_the_bundle_id(tmp_path: Path) -> None:
    case = load_case("docker_basic")
    one = bundle_from(case)
    case["name"] = "another"
    two = bundle_from(case)
    assert one.lock.bundle_id != two.lock.bundle_id
    assert sbom_cache.sbom_key(one, "linux/amd64") != sbom_cache.sbom_key(two, "linux/amd64")
    assert sbom_cache.cached_sbom(two, "linux/amd64", tmp_path) == sbom.render_sbom(two, "linux/amd64")
