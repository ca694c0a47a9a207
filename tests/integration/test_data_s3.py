"""Data push / pull against a real S3-protocol server (moto_server) on 127.0.0.1.

moto_server (moto[server], in the test extra) speaks the S3 HTTP API; envbuild reaches it through
fsspec/s3fs exactly as it would reach AWS or MinIO, with AWS_ENDPOINT_URL pointing at it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from envbuild.data.refs import DataTable
from envbuild.lock.bundle import parse_lock
from tests.lockfiles import write_placeholder_lock

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint(tool: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory,
                ) -> Iterator[str]:
    moto = tool("moto_server")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(url, timeout=1.0)
                break
            except httpx.HTTPError:
                if proc.poll() is not None:
                    pytest.fail(f"moto_server exited: {log.read_text()[-2000:]}")
                time.sleep(0.1)
        else:
            pytest.fail("moto_server did not answer within 10 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_endpoint}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def make_bucket(name: str) -> None:
    import boto3

    boto3.client("s3").create_bucket(Bucket=name)


def remote_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest, prefix: str) -> str:
    """A fresh remote: a bucket of its own on the S3 server, or a directory."""
    if kind != "s3":
        return (tmp_path / "remote").as_uri()
    request.getfixturevalue("s3_env")
    bucket = f"envbuild-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    make_bucket(bucket)
    return f"s3://{bucket}/{prefix}"


def envbuild(project: Path, cache: Path, *args: str, check: bool = True,
             ) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("envbuild", path=str(Path(sys.executable).parent)) or "envbuild"
    proc = subprocess.run([exe, "-C", str(project), "data", *args, "--cache", str(cache)],
                          capture_output=True, text=True, timeout=300, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"envbuild data {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
    return proc


@pytest.fixture
def project(tmp_path: Path) -> Path:
    p = tmp_path / "proj"
    (p / "data" / "images").mkdir(parents=True)
    write_placeholder_lock(p)
    for i in range(30):
        (p / "data" / "images" / f"img{i:02d}.bin").write_bytes(os.urandom(1000 + i))
    (p / "data" / "labels.csv").write_text("id,label\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))
    (p / "model.bin").write_bytes(os.urandom(3 << 20))
    return p


def snapshot(project: Path) -> dict[str, bytes]:
    return {str(f.relative_to(project)): f.read_bytes()
            for f in sorted((project / "data").rglob("*")) + [project / "model.bin"] if f.is_file()}


@pytest.mark.parametrize("kind", ["s3", "dir"])
def test_push_wipe_pull_checkout_round_trip(kind: str, project: Path, tmp_path: Path,
                                            request: pytest.FixtureRequest) -> None:
    url = remote_url(kind, tmp_path, request, "team/project")
    cache = tmp_path / "cache"
    envbuild(project, cache, "add", "data", "model.bin")
    before = snapshot(project)
    pushed = json.loads(envbuild(project, cache, "push", "--remote", url, "--json").stdout)
    assert pushed["objects"] == 33  # 31 files, 1 listing, model.bin
    again = json.loads(envbuild(project, cache, "push", "--remote", url, "--json").stdout)
    assert again["objects"] == 0 and again["already_there"] == 33

    shutil.rmtree(cache)
    shutil.rmtree(project / "data")
    (project / "model.bin").unlink()
    pulled = json.loads(envbuild(project, cache, "pull", "--remote", url, "--json").stdout)
    assert pulled["objects"] == 33
    envbuild(project, cache, "checkout")
    assert snapshot(project) == before
    verify = json.loads(envbuild(project, cache, "verify", "--json").stdout)
    assert verify["ok"] is True and verify["hashed"] == 32

    # A corrupted remote object is refused and never enters the cache.
    table = DataTable.from_dict(parse_lock((project / "envbuild.lock").read_text()).data)
    model = table.get("model.bin")
    assert model is not None
    if kind == "s3":
        import boto3

        key = f"team/project/sha256/{model.hexdigest[:2]}/{model.hexdigest[2:]}"
        boto3.client("s3").put_object(Bucket=url.removeprefix("s3://").split("/")[0], Key=key, Body=b"tampered")
    else:
        obj = tmp_path / "remote" / "sha256" / model.hexdigest[:2] / model.hexdigest[2:]
        obj.write_bytes(b"tampered")
    shutil.rmtree(cache)
    bad = envbuild(project, cache, "pull", "--remote", url, "model.bin", check=False)
    assert bad.returncode == 7, bad.stderr
    assert "corrupt" in bad.stderr and model.hexdigest[2:] in bad.stderr
    assert not (cache / "sha256" / model.hexdigest[:2] / model.hexdigest[2:]).exists()


def test_unreachable_s3_is_a_network_error(project: Path, tmp_path: Path,
                                           s3_env: dict[str, str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    envbuild(project, cache, "add", "model.bin")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    proc = envbuild(project, cache, "push", "--remote", "s3://nobucket/x", check=False)
    assert proc.returncode == 8, proc.stderr
    assert proc.stderr.count("error: ") == 1


def dvc_project(tmp_path: Path, tool: Callable[[str], str]) -> Path:
    """A project whose data real `dvc add` pinned (md5), imported as envbuild refs."""
    p = tmp_path / "dvcproj"
    (p / "data" / "raw" / "sub").mkdir(parents=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    for argv in (["git", "init", "-q"], [tool("dvc"), "init", "-q"]):
        subprocess.run(argv, cwd=p, check=True, env=env, capture_output=True)
    for i in range(12):
        (p / "data" / "raw" / f"f{i:02d}.bin").write_bytes(os.urandom(500 + i))
    (p / "data" / "raw" / "sub" / "labels.csv").write_text("id,label\n1,0\n")
    (p / "model.pkl").write_bytes(os.urandom(200_000))
    subprocess.run([tool("dvc"), "add", "-q", "data/raw", "model.pkl"], cwd=p, check=True,
                   env=env, capture_output=True)
    write_placeholder_lock(p)
    return p


@pytest.mark.parametrize("kind", ["s3", "dir"])
def test_md5_refs_from_dvc_push_wipe_pull_checkout(kind: str, tmp_path: Path,
                                                   tool: Callable[[str], str],
                                                   request: pytest.FixtureRequest) -> None:
    url = remote_url(kind, tmp_path, request, "dvc")
    p = dvc_project(tmp_path, tool)
    cache = tmp_path / "cache"
    refs = json.loads(envbuild(p, cache, "import-dvc", "--json").stdout)["refs"]
    assert {r["digest"].split(":")[0] for r in refs} == {"md5"}
    before = {str(f.relative_to(p)): f.read_bytes()
              for f in sorted((p / "data").rglob("*")) + [p / "model.pkl"] if f.is_file()
              and f.suffix != ".dvc" and f.name != ".gitignore"}

    # Pushed straight from DVC's cache (.dvc/cache), checked by md5 on the way out.
    pushed = json.loads(envbuild(p, cache, "push", "--remote", url, "--json").stdout)
    assert pushed["objects"] == 15  # 13 files, the .dir listing, model.pkl

    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(p / ".dvc" / "cache")
    shutil.rmtree(p / "data" / "raw")
    (p / "model.pkl").unlink()
    assert envbuild(p, cache, "checkout", check=False).returncode != 0  # nothing to take it from
    pulled = json.loads(envbuild(p, cache, "pull", "--remote", url, "--json").stdout)
    assert pulled["objects"] == 15
    envbuild(p, cache, "checkout")
    after = {name: (p / name).read_bytes() for name in before}
    assert after == before
    verify = json.loads(envbuild(p, cache, "verify", "--json").stdout)
    assert verify["ok"] is True and verify["hashed"] == 14  # every file re-read, checked by md5

    # A corrupted remote object (the md5 of one file) is refused and never enters the cache.
    model = next(r for r in refs if r["path"] == "model.pkl")["digest"].split(":")[1]
    if kind == "s3":
        import boto3

        boto3.client("s3").put_object(Bucket=url.removeprefix("s3://").split("/")[0], Key=f"dvc/md5/{model[:2]}/{model[2:]}",
                                      Body=b"tampered")
    else:
        (tmp_path / "remote" / "md5" / model[:2] / model[2:]).write_bytes(b"tampered")
    shutil.rmtree(cache)
    bad = envbuild(p, cache, "pull", "--remote", url, "model.pkl", check=False)
    assert bad.returncode == 7, bad.stderr
    assert "corrupt" in bad.stderr and model[2:] in bad.stderr
    assert not (cache / "md5" / model[:2] / model[2:]).exists()
