"""Builders' argv (as lists), the wheel cache, the build record, failures, and the image diff."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from envbuild.build import builders as b
from envbuild.build import service
from envbuild.build.diff import Entry, Image, diff_images, read_layer, render_diff
from envbuild.build.record import BuildRecord, ImageBuild, parse_record, render_record
from envbuild.build.verify import CheckResult, NotReproducibleError, run_checks
from envbuild.build.wheels import cache_path, fetch_wheels
from envbuild.errors import EnvbuildError, IntegrityError, LockError, ToolError
from envbuild.lock.pylock import Wheel
from envbuild.tools import Result

BASE = "127.0.0.1:5000/envbuild/python@sha256:" + "a" * 64


def opts(**kw: Any) -> b.BuildOptions:
    return b.BuildOptions(**{"builder": "buildah", "context": "/ctx", "base": BASE,
                             "iidfile": "/tmp/iid", **kw})


def test_buildah_argv() -> None:
    assert b.build_argv(opts()) == [
        "buildah", "bud", "--isolation", "chroot", "--format", "oci",
        "--platform", "linux/amd64", "--timestamp", "0", "--layers=true",
        "--iidfile", "/tmp/iid", "--file", "/ctx/Dockerfile", "--tls-verify=false", "/ctx"]


def test_buildah_no_cache_and_storage_driver() -> None:
    argv = b.build_argv(opts(cache=False, storage_driver="vfs"))
    assert argv[:4] == ["buildah", "--storage-driver", "vfs", "bud"]
    assert "--no-cache" in argv and "--layers=true" in argv  # same layer layout as cached builds


def test_tls_only_off_for_loopback() -> None:
    argv = b.build_argv(opts(base="registry.example.org/python@sha256:" + "a" * 64))
    assert "--tls-verify=false" not in argv


def test_podman_argv_matches_buildah() -> None:
    buildah, podman = b.build_argv(opts()), b.build_argv(opts(builder="podman"))
    assert podman[:2] == ["podman", "build"] and podman[2:] == buildah[2:]


def test_docker_argv_classic_and_buildx() -> None:
    classic = opts(builder="docker")
    assert b.build_argv(classic) == ["docker", "build", "--iidfile", "/tmp/iid",
                                     "--file", "/ctx/Dockerfile", "/ctx"]
    assert b.docker_env(classic) == {"DOCKER_BUILDKIT": "1"}  # RUN --mount needs BuildKit
    buildx = opts(builder="docker", buildx=True, cache=False)
    argv = b.build_argv(buildx)
    assert argv[:3] == ["docker", "buildx", "build"]
    assert "type=docker,rewrite-timestamp=true" in argv and "SOURCE_DATE_EPOCH=0" in argv
    assert argv[-2:] == ["--no-cache", "/ctx"]
    assert b.docker_env(buildx) == {"SOURCE_DATE_EPOCH": "0"}


def test_export_and_load_argv() -> None:
    assert b.export_argv("buildah", "sha256:" + "b" * 64, "oci:/out") == [
        "skopeo", "copy", "--quiet", "containers-storage:" + "b" * 64, "oci:/out"]
    assert b.export_argv("podman", "localhost/x:1", "oci:/o", "vfs")[3].startswith(
        "containers-storage:[vfs@")
    assert b.export_argv("docker", "x:1", "oci:/o")[3] == "docker-daemon:x:1"
    assert b.docker_load_argv("/a.tar", "x:1") == [
        "skopeo", "copy", "--quiet", "oci-archive:/a.tar", "docker-daemon:x:1"]
    assert b.tag_argv("buildah", "sha256:1", "localhost/x:1") == [
        "buildah", "tag", "sha256:1", "localhost/x:1"]


def test_layers_from_each_inspect_format() -> None:
    assert service.layers_from_inspect({"Docker": {"rootfs": {"diff_ids": ["a", "b"]}}}) == ("a", "b")
    assert service.layers_from_inspect([{"RootFS": {"Layers": ["c"]}}]) == ("c",)


class FakeRunner:
    """Records argv; fails the build step with the given stderr."""

    def __init__(self, fail_build: str = "") -> None:
        self.calls: list[list[str]] = []
        self.fail_build = fail_build

    def run(self, argv: list[str], **kw: Any) -> Result:
        self.calls.append(list(argv))
        if self.fail_build and argv[1:2] == ["bud"]:
            raise ToolError("buildah build failed", argv=argv, returncode=1,
                            stderr=self.fail_build)
        return Result(argv=tuple(argv), returncode=0, stdout="", stderr="")


def test_failed_step_is_named_and_nothing_is_tagged() -> None:
    runner = FakeRunner(fail_build="STEP 1/3: FROM x\nSTEP 2/3: RUN exit 3\nError: exit status 3")
    with pytest.raises(ToolError, match=r"failed at STEP 2/3: RUN exit 3.*no image was tagged"):
        service.run_build(opts(), runner)  # type: ignore[arg-type]
    assert not any("tag" in call for call in runner.calls)


def test_missing_builder_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "which", lambda name: None)
    with pytest.raises(ToolError, match="buildah is not installed") as info:
        service.require_builder("buildah", FakeRunner())  # type: ignore[arg-type]
    assert info.value.exit_code == 6 and "apt-get install buildah" in info.value.hint


def test_unknown_builder() -> None:
    with pytest.raises(EnvbuildError, match="unknown builder"):
        service.require_builder("kaniko", FakeRunner())  # type: ignore[arg-type]


def _wheel(data: bytes, name: str = "demo-1.0-py3-none-any.whl") -> Wheel:
    return Wheel(name=name, url=f"https://files.example.org/{name}", size=len(data),
                 sha256=hashlib.sha256(data).hexdigest())


def test_wheel_cache_fetches_once_and_verifies(tmp_path: Path) -> None:
    data = b"wheel bytes"
    hits = []

    def handler(request: httpx.Request) -> httpx.Response:
        hits.append(str(request.url))
        return httpx.Response(200, content=data)

    wheel = _wheel(data)
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        first = fetch_wheels([wheel], tmp_path, client=client)
        second = fetch_wheels([wheel], tmp_path, client=client)
    assert first == second == {wheel.sha256: cache_path(tmp_path, wheel.sha256)}
    assert first[wheel.sha256].read_bytes() == data and len(hits) == 1


def test_wheel_hash_mismatch_stops_and_caches_nothing(tmp_path: Path) -> None:
    wheel = _wheel(b"what the lock pinned")
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=b"something else"))
    with httpx.Client(transport=transport) as client, pytest.raises(IntegrityError) as info:
        fetch_wheels([wheel], tmp_path, client=client)
    assert wheel.name in info.value.message and wheel.sha256 in info.value.message
    assert info.value.exit_code == 7
    assert list((tmp_path / "wheels" / "sha256").iterdir()) == []  # no temp file left either


def test_record_round_trip_and_canonical_bytes() -> None:
    build = ImageBuild(builder="buildah", platform="linux/amd64", image_id="sha256:" + "1" * 64,
                       tag="localhost/x:abc", layers=("sha256:a", "sha256:b"), base=BASE,
                       reproducible=True)
    record = BuildRecord(bundle="sha256:" + "2" * 64).with_build(build)
    data = render_record(record)
    assert parse_record(data.decode()) == record
    assert render_record(parse_record(data.decode())) == data and data.endswith(b"}\n")
    with pytest.raises(LockError, match="damaged"):
        parse_record("{")


def test_checks_run_on_after_a_failure() -> None:
    def bad() -> CheckResult:
        raise NotReproducibleError("differs")

    def good() -> CheckResult:
        return CheckResult(name="fresh", ok=True, summary="ok")

    results = run_checks([("rebuild", bad), ("fresh", good)])
    assert [(r.name, r.ok) for r in results] == [("rebuild", False), ("fresh", True)]
    assert results[0].error is not None and results[0].error.exit_code == 9


def _layer(files: dict[str, tuple[bytes, int, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, (data, mode, mtime) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, mtime
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_diff_names_layer_file_and_attribute() -> None:
    old_layer = read_layer(_layer({"app/a.py": (b"x", 0o644, 0), "stamp": (b"1", 0o644, 0),
                                   "gone": (b"", 0o644, 0)}))
    new_layer = read_layer(_layer({"app/a.py": (b"x", 0o755, 5), "stamp": (b"2", 0o644, 0),
                                   "new": (b"", 0o644, 0)}))
    base = {"": Entry(path="", kind="dir", sha256="", size=0, mode=0, uid=0, gid=0, mtime=0,
                      link="")}
    old = Image(config={"rootfs": {"diff_ids": ["sha256:base", "sha256:old"]},
                        "history": [{"created_by": "base"}, {"created_by": "RUN date > stamp"}],
                        "config": {"Labels": {"a": "1"}}}, layers=(base, old_layer))
    new = Image(config={"rootfs": {"diff_ids": ["sha256:base", "sha256:new"]},
                        "history": [{"created_by": "base"}, {"created_by": "RUN date > stamp"}],
                        "config": {"Labels": {"a": "2"}}}, layers=(base, new_layer))
    diff = diff_images(old, new)
    assert [layer.index for layer in diff.layers] == [1]
    changes = {c.path: c.what for c in diff.layers[0].files}
    assert changes == {"app/a.py": ("mode", "time"), "stamp": ("content",),
                       "gone": ("removed",), "new": ("added",)}
    assert diff.config == ('config.Labels.a: "1" -> "2"',)
    text = "\n".join(render_diff(diff))
    assert "layer 2:" in text and "RUN date > stamp" in text and "stamp: content" in text


def test_image_tag_names_the_bundle() -> None:
    class Lock:
        short_id = "abc123def456"

        class image:
            name = "churn"

    class Bundle:
        lock = Lock

    assert service.image_tag(Bundle, "buildah") == "localhost/churn:abc123def456"  # type: ignore[arg-type]
    assert service.image_tag(Bundle, "docker") == "churn:abc123def456"  # type: ignore[arg-type]


def test_cli_registers_the_image_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from envbuild.cli.main import build_parser, main

    parser = build_parser()
    args = parser.parse_args(["build", "--builder", "podman", "--no-cache"])
    assert args.builder == "podman" and args.no_cache is True
    assert parser.parse_args(["verify", "--rebuild"]).rebuild is True
    # verify always runs the lock check first: outside a project that is a spec error.
    assert main(["verify", "-C", "/nonexistent-project"]) == 3
    assert "FAIL  lock" in capsys.readouterr().err


def test_docker_cli_without_buildx_is_named() -> None:
    class DockerRunner(FakeRunner):
        def run(self, argv: list[str], **kw: Any) -> Result:
            if argv[:2] == ["docker", "build"]:
                raise ToolError("docker build failed", argv=argv, returncode=1,
                                stderr="ERROR: BuildKit is enabled but the buildx component is "
                                "missing or broken.")
            return super().run(argv, **kw)

    with pytest.raises(ToolError, match="cannot build without buildx") as info:
        service.run_build(opts(builder="docker"), DockerRunner())  # type: ignore[arg-type]
    assert "--builder buildah" in info.value.hint
