"""The flake generator: same wheels as the lock, deterministic bytes, escaping, clear errors."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from pathlib import Path

import pytest

from envbuild.errors import EnvbuildError, LockError
from envbuild.generate.nix import (
    DEFAULT_NIXPKGS,
    NixOptions,
    NixpkgsPin,
    StorePath,
    flake_systems,
    nix_system,
    render_flake,
    render_flake_lock,
)
from envbuild.generate.nix_nar import sri_sha256
from envbuild.lock.loaded import Bundle, load_bundle
from envbuild.lock.pylock import LockedPackage, Wheel

REPO = Path(__file__).resolve().parents[2]
CHURN = REPO / "examples" / "churn"
GOLDEN_LOCK = REPO / "tests" / "golden" / "basic" / "expected"

PATHS = [
    StorePath(name="data/train.csv", path="data/train.csv", sha256="ab" * 32, kind="file"),
    StorePath(name="model", path="model", sha256="cd" * 32, kind="dir"),
]


@pytest.fixture(scope="module")
def churn() -> Bundle:
    return load_bundle(CHURN)


def _flake_wheels(text: str, system: str) -> set[tuple[str, str]]:
    """(file, sha256 SRI) of every wheel listed under `system` in a generated flake.nix."""
    block = text.split(f"        {system} = {{", 1)[1].split("\n        };", 1)[0]
    return set(re.findall(r'\{ file = "([^"]+)"; url = "[^"]+"; hash = "([^"]+)"; \}', block))


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
def test_flake_wheels_are_the_locks_wheels(churn: Bundle, platform: str) -> None:
    """Done-when: names and sha256 in the flake equal `wheels_for`, what the Dockerfile installs."""
    target = next(t for t in churn.targets if t.platform == platform)
    expected = {(w.name, sri_sha256(w.sha256)) for _, w in churn.python.wheels_for(target)}
    text = render_flake(churn)["flake.nix"].decode()
    assert _flake_wheels(text, nix_system(platform)) == expected
    assert len(expected) == churn.lock.python.packages  # one wheel per package on each target


def test_systems_and_native(churn: Bundle) -> None:
    systems = flake_systems(churn)
    assert [s.system for s in systems] == ["aarch64-linux", "x86_64-linux"]
    assert all(s.native for s in systems)  # numpy, pandas, ... carry compiled code
    amd = {w.file: w for w in systems[1].wheels}
    assert not amd["click-8.5.1-py3-none-any.whl"].native


def test_twice_same_bytes_and_path_order_does_not_matter(churn: Bundle) -> None:
    first = render_flake(churn, PATHS)
    shuffled = PATHS[:]
    random.Random(1).shuffle(shuffled)
    assert render_flake(churn, list(reversed(PATHS))) == first == render_flake(churn, shuffled)
    for data in first.values():
        assert data.endswith(b"\n") and not data.endswith(b"\n\n") and b"\r" not in data


def test_flake_lock_pins_nixpkgs() -> None:
    lock = json.loads(render_flake_lock())
    node = lock["nodes"]["nixpkgs"]
    assert node["locked"] == {"narHash": DEFAULT_NIXPKGS.nar_hash, "owner": "NixOS",
                              "repo": "nixpkgs", "rev": DEFAULT_NIXPKGS.rev, "type": "github"}
    assert node["original"]["rev"] == DEFAULT_NIXPKGS.rev
    assert lock["nodes"]["root"] == {"inputs": {"nixpkgs": "nixpkgs"}}
    assert lock["version"] == 7 and lock["root"] == "root"


def test_nixpkgs_option_reaches_both_files(churn: Bundle) -> None:
    pin = NixpkgsPin(rev="0" * 40, nar_hash="sha256-" + "A" * 43 + "=")
    files = render_flake(churn, options=NixOptions(nixpkgs=pin))
    assert f'inputs.nixpkgs.url = "github:NixOS/nixpkgs/{"0" * 40}";' in files["flake.nix"].decode()
    assert json.loads(files["flake.lock"])["nodes"]["nixpkgs"]["locked"]["rev"] == "0" * 40
    assert NixpkgsPin.from_dict(pin.to_dict()) == pin


def test_paths_are_checked_store_paths(churn: Bundle) -> None:
    text = render_flake(churn, PATHS)["flake.nix"].decode()
    assert 'src = ./. + "/data/train.csv";' in text
    assert f'sha256 = "{sri_sha256("ab" * 32)}";' in text
    assert "recursive = false;" in text and "recursive = true;" in text
    assert StorePath.from_dict(PATHS[0].to_dict()) == PATHS[0]


HOSTILE = 'x"; evil = builtins.abort "pwned"; y = "${builtins.abort 1}\\\nz'


def test_every_value_is_escaped(churn: Bundle) -> None:
    lock = dataclasses.replace(churn.lock, name=HOSTILE, image=dataclasses.replace(
        churn.lock.image, name=HOSTILE, cmd=(HOSTILE,), code=("src/${x}\\",)))
    bundle = dataclasses.replace(churn, lock=lock)
    paths = [StorePath(name=HOSTILE, path='we"ird/${x}\\ dir', sha256="ab" * 32, kind="dir")]
    text = render_flake(bundle, paths, NixOptions(command=(HOSTILE,)))["flake.nix"].decode()
    assert "evil" in text and 'evil = builtins' not in text.replace('\\"; evil', "")
    assert "${builtins.abort" not in text.replace("\\${builtins.abort", "")
    assert '"x\\"; evil = builtins.abort \\"pwned\\"; y = \\"\\${builtins.abort 1}\\\\\\nz"' in text
    assert 'src = ./. + "/we\\"ird/\\${x}\\\\ dir";' in text
    assert 'path = ./. + "/src/\\${x}\\\\"; }; }' in text  # a code path
    assert text.count('"x\\"; evil = builtins.abort') >= 4  # name, image name, cmd, path


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside", "a/../../b"])
def test_paths_stay_inside_the_project(churn: Bundle, bad: str) -> None:
    with pytest.raises(LockError, match="not a path inside the project"):
        render_flake(churn, [StorePath(name="x", path=bad, sha256="ab" * 32, kind="file")])


def test_duplicate_path_names(churn: Bundle) -> None:
    with pytest.raises(LockError, match="share a name"):
        render_flake(churn, [PATHS[0], dataclasses.replace(PATHS[1], name=PATHS[0].name)])


def test_sdist_only_package_is_refused(churn: Bundle) -> None:
    sdist_only = LockedPackage(name="legacy-thing", version="1.0", marker=None, wheels=())
    python = dataclasses.replace(churn.python, packages=(*churn.python.packages, sdist_only))
    with pytest.raises(LockError) as err:
        render_flake(dataclasses.replace(churn, python=python))
    assert "legacy-thing 1.0: no wheel for linux/amd64" in err.value.message
    assert "only an sdist" in err.value.message and "pin a version" in err.value.hint


def test_package_for_one_platform_only_is_fine(churn: Bundle) -> None:
    """A package whose marker excludes arm64 needs no arm64 wheel."""
    wheel = Wheel(name="amdonly-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
                  url="https://example.org/amdonly-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
                  size=1, sha256="ef" * 32)
    pkg = LockedPackage(name="amdonly", version="1.0", wheels=(wheel,),
                        marker="sys_platform == 'linux' and platform_machine == 'x86_64'")
    python = dataclasses.replace(churn.python, packages=(*churn.python.packages, pkg))
    systems = {s.system: s for s in flake_systems(dataclasses.replace(churn, python=python))}
    assert "amdonly" in {w.package for w in systems["x86_64-linux"].wheels}
    assert "amdonly" not in {w.package for w in systems["aarch64-linux"].wheels}


def test_platform_without_nix_system() -> None:
    with pytest.raises(LockError) as err:
        nix_system("windows/amd64")
    assert "has no Nix system" in err.value.message
    assert "linux/amd64 (x86_64-linux) and linux/arm64 (aarch64-linux)" in err.value.hint


def test_golden_basic_lock_renders() -> None:
    bundle = load_bundle_from(GOLDEN_LOCK)
    text = render_flake(bundle)["flake.nix"].decode()
    assert "pkgs.${pythonAttr}" in text and 'pythonAttr = "python311";' in text


def load_bundle_from(directory: Path) -> Bundle:
    from envbuild.lock.loaded import parse_bundle

    return parse_bundle((directory / "envbuild.lock").read_text(),
                        (directory / "pylock.toml").read_bytes())


def test_generate_writes_and_refuses_a_hand_written_flake(tmp_path: Path) -> None:
    from envbuild.generate.nix_write import generate_flake

    for name in ("envbuild.lock", "pylock.toml"):
        (tmp_path / name).write_bytes((CHURN / name).read_bytes())
    first = generate_flake(tmp_path)
    assert first.changed == ("flake.nix", "flake.lock")
    assert generate_flake(tmp_path).changed == ()
    (tmp_path / "flake.nix").write_text("{ outputs = _: {}; }\n")
    with pytest.raises(EnvbuildError, match="not generated by envbuild"):
        generate_flake(tmp_path)
    assert generate_flake(tmp_path, force=True).changed == ("flake.nix",)


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
def test_flake_wheels_equal_the_dockerfiles(churn: Bundle, platform: str) -> None:
    """Done-when: the image's wheels/requirements.txt (what its Dockerfile pip-installs, by
    name and sha256) and wheel files are the flake's wheels for the same platform."""
    dockerfile = pytest.importorskip("envbuild.generate.dockerfile")
    lines = dockerfile.render_wheel_requirements(churn, platform).decode().splitlines()
    installs = {(line.split("==")[0], line.rsplit("--hash=sha256:", 1)[1])
                for line in lines if not line.startswith("#")}
    files = {w.name for _, w in dockerfile.image_wheels(churn, platform)}
    (system,) = [s for s in flake_systems(churn) if s.platform == platform]
    assert {(w.package, w.sha256) for w in system.wheels} == installs
    assert {w.file for w in system.wheels} == files
    assert len(installs) == len(system.wheels) == churn.lock.python.packages
