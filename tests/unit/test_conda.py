"""The conda core: spec table, environment file, lock model, pin, argv and Dockerfile. Pure."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from envbuild.conda.environment import CondaEnvironment, parse_environment
from envbuild.conda.image import CondaImageOptions, build_argv, render_dockerfile
from envbuild.conda.lockfile import CondaLock, CondaPackage, content_hash
from envbuild.conda.pin import CondaPin
from envbuild.conda.solve import (
    _gateway_error,
    _solver_error,
    build_lock,
    conda_executable,
    conda_lock_argv,
)
from envbuild.errors import LockError, NetworkError, SpecError
from envbuild.lock.bundle import parse_lock, render_lock
from envbuild.spec import parse_spec
from envbuild.spec.model import CondaSpec
from tests.unit.test_bundle import make_lock

ENV = """\
name: demo
channels:
  - conda-forge
  - nodefaults
dependencies:
  - python=3.11
  - numpy >=1.26
  - tinylib
  - pip:
      - requests==2.32.3
"""


def test_spec_conda_table_defaults() -> None:
    spec = parse_spec('name = "x"\nrequirements = ["r.in"]\n[conda]\nenvironment = "environment.yml"\n')
    assert spec.conda == CondaSpec(environment="environment.yml")
    assert spec.conda.platforms == ("linux-64", "linux-aarch64")
    assert spec.to_dict()["conda"] == {"environment": "environment.yml",
                                       "platforms": ["linux-64", "linux-aarch64"]}


def test_conda_spec_round_trip() -> None:
    spec = CondaSpec(environment="conda.yaml", channels=("file:///ch",), platforms=("linux-64",))
    assert CondaSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(("body", "key"), [
    ('[conda]\nenvironment = "e.yml"\nplatforms = ["win-64"]\n', "conda.platforms"),
    ('[conda]\nenvironment = "e.yml"\nchannels = ["bad channel"]\n', "conda.channels"),
    ('[conda]\nenvironment = "../e.yml"\n', "conda.environment"),
    ('[conda]\nchannels = ["x"]\n', "conda.environment"),
    ('[conda]\nenvironment = "e.yml"\nsolver = "x"\n', "conda.solver"),
])
def test_spec_conda_errors_name_the_key(body: str, key: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec('name = "x"\nrequirements = ["r.in"]\n' + body)
    assert err.value.key == key


def test_environment_file_parses() -> None:
    env = parse_environment(ENV, file="environment.yml")
    assert env.channels == ("conda-forge",)
    assert env.dependencies == ("python=3.11", "numpy >=1.26", "tinylib")
    assert env.pip == ("requests==2.32.3",)
    assert env.specs == ("python 3.11.*", "numpy >=1.26", "tinylib")
    assert CondaEnvironment.from_dict(env.to_dict()) == env


@pytest.mark.parametrize(("text", "key"), [
    ("dependencies:\n  - 3\n", "dependencies[0]"),
    ("dependencies:\n  - ok\n  - pip:\n      - --index-url x\n", "dependencies[1].pip[0]"),
    ("dependencies: []\nextras: 1\n", "extras"),
    ("channels: 3\n", "channels"),
])
def test_environment_errors_name_the_key(text: str, key: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_environment(text, file="environment.yml")
    assert err.value.key == key
    assert err.value.message.startswith(f"environment.yml: {key}: ")


def test_environment_not_yaml() -> None:
    with pytest.raises(SpecError, match="not valid YAML"):
        parse_environment("a: [", file="environment.yml")


def _pkg(name: str, platform: str, **kw: object) -> CondaPackage:
    fields: dict[str, object] = {
        "name": name, "version": "1.0", "build": "h_0", "platform": platform,
        "url": f"file:///ch/{platform}/{name}-1.0-h_0.conda", "sha256": "a" * 64, "md5": "b" * 32}
    fields.update(kw)
    return CondaPackage(**fields)  # type: ignore[arg-type]


def test_lock_model_round_trip() -> None:
    pkg = _pkg("tinylib", "linux-64", depends=("x >=1",))
    assert CondaPackage.from_dict(pkg.to_dict()) == pkg
    lock = CondaLock(channels=("file:///ch",), platforms=("linux-64",), specs=("tinylib",),
                     sources=("environment.yml",), packages=(pkg,))
    assert CondaLock.from_dict(lock.to_dict()) == lock
    assert lock.for_platform("linux-64") == (pkg,)
    assert pkg.filename == "tinylib-1.0-h_0.conda"


def test_pin_round_trip() -> None:
    pin = CondaPin(environment="environment.yml", lock_file="conda-lock.yml",
                   lock_digest="sha256:" + "c" * 64, channels=("file:///ch",),
                   platforms=("linux-64", "linux-aarch64"), packages=4)
    assert CondaPin.from_dict(pin.to_dict()) == pin


def test_conda_table_enters_the_bundle_id_and_old_locks_still_parse() -> None:
    plain = make_lock()
    pin = {"environment": "environment.yml", "lock_file": "conda-lock.yml",
           "lock_digest": "sha256:" + "c" * 64, "channels": ["file:///ch"],
           "platforms": ["linux-64"], "packages": 2}
    with_conda = dataclasses.replace(plain, conda=pin)
    assert "[conda]" not in render_lock(plain).decode()
    assert parse_lock(render_lock(plain).decode()) == plain
    assert parse_lock(render_lock(with_conda).decode()) == with_conda
    assert with_conda.bundle_id != plain.bundle_id
    other = dataclasses.replace(plain, conda={**pin, "lock_digest": "sha256:" + "d" * 64})
    assert other.bundle_id != with_conda.bundle_id


def test_build_lock_sorts_and_checks_platforms() -> None:
    env = CondaEnvironment(name=None, channels=(), dependencies=("tinylib",), pip=())
    x86, arm = _pkg("b", "linux-64"), _pkg("a", "linux-aarch64")
    lock = build_lock(env, environment="e.yml", channels=["c"],
                      platforms=["linux-aarch64", "linux-64"], packages=[arm, x86])
    assert lock.platforms == ("linux-64", "linux-aarch64")
    assert lock.packages == (x86, arm)  # by platform, then name
    with pytest.raises(LockError, match="linux-aarch64"):
        build_lock(env, environment="e.yml", channels=["c"],
                   platforms=["linux-aarch64", "linux-64"], packages=[x86])


def test_content_hash_depends_on_platform_and_specs() -> None:
    h = content_hash(("c",), ("x",), "linux-64")
    assert h == content_hash(("c",), ("x",), "linux-64")
    assert h != content_hash(("c",), ("x",), "linux-aarch64")
    assert h != content_hash(("c",), ("x >=2",), "linux-64")


def test_solver_errors_name_package_and_platform() -> None:
    err = _solver_error("Cannot solve the request because of: No candidates were found for "
                        "onlyx86 *.\n", "linux-aarch64")
    assert "'onlyx86'" in err.message and "linux-aarch64" in err.message
    err = _solver_error("Cannot solve: a 1 conflicts with b", "linux-64")
    assert "unsatisfiable for linux-64" in err.message
    net = _gateway_error("error sending request for url (http://127.0.0.1:9/ch/noarch/"
                         "repodata.json)\nCaused by: Connection refused", "linux-64")
    assert isinstance(net, NetworkError) and "http://127.0.0.1:9/ch/noarch/repodata.json" in net.message


def test_conda_executable_prefers_micromamba() -> None:
    found = {"conda": "/usr/bin/conda", "micromamba": "/usr/bin/micromamba"}
    assert conda_executable(found.get) == "/usr/bin/micromamba"
    assert conda_executable(lambda _: None) is None


def test_conda_lock_argv() -> None:
    assert conda_lock_argv(conda_exe="/usr/bin/mamba", environment="environment.yml",
                           channels=["file:///ch"], platforms=["linux-aarch64", "linux-64"],
                           lockfile="/tmp/x/conda-lock.yml") == [
        "conda-lock", "lock", "--conda", "/usr/bin/mamba", "--file", "environment.yml",
        "--kind", "lock", "--lockfile", "/tmp/x/conda-lock.yml", "--channel", "file:///ch",
        "--platform", "linux-64", "--platform", "linux-aarch64"]


def test_dockerfile_and_build_argv() -> None:
    base = "127.0.0.1:5000/envbuild/python@sha256:" + "e" * 64
    assert render_dockerfile(base=base) == (
        f"FROM {base}\nCOPY conda-prefix/ /opt/conda/\n"
        'ENV CONDA_PREFIX="/opt/conda" PATH="/opt/conda/bin:/usr/local/sbin:/usr/local/bin:'
        '/usr/sbin:/usr/bin:/sbin:/bin"\n').encode()
    with pytest.raises(ValueError):
        render_dockerfile(base="x\nRUN evil")
    argv = build_argv(CondaImageOptions(context="/ctx", base=base, iidfile="/ctx/.iid",
                                        storage_driver="vfs"))
    assert argv == ["buildah", "--storage-driver", "vfs", "bud", "--isolation", "chroot",
                    "--format", "oci", "--platform", "linux/amd64", "--timestamp", "0",
                    "--layers=false", "--iidfile", "/ctx/.iid", "--file", "/ctx/Dockerfile",
                    "--tls-verify=false", "/ctx"]
    assert "--tls-verify=false" not in build_argv(CondaImageOptions(
        context="/c", base="registry.example.org/p@sha256:" + "e" * 64, platform="linux-aarch64"))


def test_load_spec_names_a_missing_environment_file(tmp_path: Path) -> None:
    from envbuild.spec import load_spec

    (tmp_path / "r.in").write_text("")
    (tmp_path / "envbuild.toml").write_text(
        'name = "x"\nrequirements = ["r.in"]\n[conda]\nenvironment = "environment.yml"\n')
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path)
    assert err.value.key == "conda.environment"


def test_dockerfile_with_the_pip_part() -> None:
    text = render_dockerfile(base="b@sha256:" + "e" * 64, pip=True).decode()
    assert text.startswith("FROM b@sha256:" + "e" * 64 + " AS deps\n")
    assert "--require-hashes --no-deps" in text and "--no-index" in text
    assert "COPY --from=deps /opt/venv /opt/venv\n" in text
    assert 'PATH="/opt/conda/bin:/opt/venv/bin:' in text


def test_cli_registers_the_conda_commands() -> None:
    from envbuild.cli.main import build_parser

    args = build_parser().parse_args(["conda-install", "/tmp/x", "--platform", "linux-aarch64"])
    assert args.prefix == Path("/tmp/x") and args.platform == "linux-aarch64"
    args = build_parser().parse_args(["conda-build", "--no-cache"])
    assert args.no_cache and args.platform == "linux-64"


def test_a_conda_spec_needs_no_requirement_source(tmp_path: Path) -> None:
    from envbuild.spec import load_spec

    (tmp_path / "environment.yml").write_text("dependencies: [x]\n")
    (tmp_path / "envbuild.toml").write_text('name = "x"\n[conda]\nenvironment = "environment.yml"\n')
    assert load_spec(tmp_path).requirements == ()
    (tmp_path / "envbuild.toml").write_text('name = "x"\n')
    with pytest.raises(SpecError, match="no requirement source"):
        load_spec(tmp_path)


def test_model_conda_yaml_as_the_environment() -> None:
    from envbuild.spec.model import MODEL_CONDA_ENV

    base = 'name = "x"\nrequirements = ["r.in"]\n[model]\nuri = "models:/m/1"\n'
    spec = parse_spec(base + 'environment = "conda"\n')
    assert spec.conda == CondaSpec(environment=MODEL_CONDA_ENV) and spec.conda.file is None
    assert spec.model is not None and spec.model.environment == "conda"
    spec = parse_spec(base + 'environment = "conda"\n[conda]\nplatforms = ["linux-64"]\n')
    assert spec.conda == CondaSpec(environment=MODEL_CONDA_ENV, platforms=("linux-64",))
    with pytest.raises(SpecError, match="two conda environments") as err:
        parse_spec(base + 'environment = "conda"\n[conda]\nenvironment = "e.yml"\n')
    assert err.value.key == "conda.environment"
    with pytest.raises(SpecError) as err:
        parse_spec(base + 'environment = "pip"\n')
    assert err.value.key == "model.environment"
    assert parse_spec(base).conda is None


def test_nix_refuses_a_bundle_with_conda_clearly() -> None:
    from envbuild.conda.targets import refuse_conda

    plain = make_lock()
    refuse_conda(plain, "nix")  # no conda: nothing to say
    with_conda = dataclasses.replace(plain, conda={"lock_file": "conda-lock.yml", "packages": 4})
    with pytest.raises(LockError, match="nix target does not support conda environments yet"):
        refuse_conda(with_conda, "nix")
