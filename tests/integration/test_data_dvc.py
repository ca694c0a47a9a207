"""import-dvc against files that real `dvc add` and `dvc repro` wrote (DVC 3, md5)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from envbuild.data.service import DataContext, scan
from tests.lockfiles import write_placeholder_lock

pytestmark = pytest.mark.integration


def run(argv: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def envbuild(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("envbuild", path=str(Path(sys.executable).parent)) or "envbuild"
    return run([exe, "-C", str(project), "data", *args, "--cache", str(project.parent / "cache")],
               project, check=check)


@pytest.fixture
def dvc_repo(tmp_path: Path, tool: Callable[[str], str]) -> Path:
    dvc, git = tool("dvc"), tool("git")
    p = tmp_path / "repo"
    (p / "data" / "raw" / "sub").mkdir(parents=True)
    run([git, "init", "-q"], p)
    run([dvc, "init", "-q"], p)
    run([dvc, "config", "core.analytics", "false"], p)
    (p / "data" / "raw" / "a.csv").write_text("id,v\n1,2\n")
    (p / "data" / "raw" / "sub" / "b.bin").write_bytes(os.urandom(2000))
    (p / "data" / "raw" / "a-b").mkdir()
    (p / "data" / "raw" / "a-b" / "c.txt").write_text("ordering: a-b/ vs a/")
    (p / "data" / "raw" / "a").mkdir()
    (p / "data" / "raw" / "a" / "d.txt").write_text("d")
    (p / "model.pkl").write_bytes(os.urandom(5000))
    run([dvc, "add", "-q", "data/raw", "model.pkl"], p)
    run([dvc, "stage", "add", "-q", "-n", "count", "-d", "data/raw/a.csv", "-o", "out/count.txt",
         "mkdir -p out && wc -l data/raw/a.csv > out/count.txt"], p)
    run([dvc, "repro", "-q"], p)
    write_placeholder_lock(p)
    return p


def test_import_dvc_refs_verify_then_fail_after_a_byte_changes(dvc_repo: Path) -> None:
    imported = json.loads(envbuild(dvc_repo, "import-dvc", "--json").stdout)
    refs = {r["path"]: r for r in imported["refs"]}
    assert set(refs) == {"data/raw", "model.pkl", "out/count.txt"}
    assert refs["data/raw"]["kind"] == "dir" and refs["data/raw"]["files"] == 4
    assert all(r["digest"].startswith("md5:") and r["source"] == "dvc" for r in refs.values())
    assert refs["out/count.txt"]["origin"] == "dvc.lock"

    verify = json.loads(envbuild(dvc_repo, "verify", "--json").stdout)
    assert verify["ok"] is True, verify
    status = json.loads(envbuild(dvc_repo, "status", "--json").stdout)
    assert status["ok"] is True

    data = bytearray((dvc_repo / "data" / "raw" / "sub" / "b.bin").read_bytes())
    data[7] ^= 0xFF
    (dvc_repo / "data" / "raw" / "sub" / "b.bin").write_bytes(bytes(data))
    failed = envbuild(dvc_repo, "verify", "--json", check=False)
    assert failed.returncode == 7
    payload = json.loads(failed.stdout)
    (bad,) = [r for r in payload["refs"] if r["state"] != "ok"]
    # DVC's own .dir listing in .dvc/cache names the file.
    assert bad["changes"] == [{"path": "data/raw/sub/b.bin", "change": "modified"}]

    # checkout restores it from DVC's cache, checked by md5.
    envbuild(dvc_repo, "checkout", "--force")
    assert json.loads(envbuild(dvc_repo, "verify", "--json").stdout)["ok"] is True
    (dvc_repo / "model.pkl").write_bytes(b"changed")
    assert envbuild(dvc_repo, "verify", "model.pkl", check=False).returncode == 7


def test_data_add_re_pins_an_imported_path_by_sha256(dvc_repo: Path) -> None:
    envbuild(dvc_repo, "import-dvc", "data/raw.dvc")
    added = json.loads(envbuild(dvc_repo, "add", "data/raw", "--json").stdout)
    (ref,) = added["refs"]
    assert ref["digest"].startswith("sha256:") and ref["source"] == "envbuild"


def test_dvcignore_is_honoured_as_dvc_applies_it(tmp_path: Path, tool: Callable[[str], str],
                                                 ) -> None:
    dvc, git = tool("dvc"), tool("git")
    p = tmp_path / "repo"
    raw = p / "data" / "raw"
    for d in ("sub", "cache", ".hg", ".git"):
        (raw / d).mkdir(parents=True)
    (p / "vendor").mkdir()
    run([git, "init", "-q"], p)
    run([dvc, "init", "-q"], p)
    run([dvc, "config", "core.analytics", "false"], p)
    files = {"a.csv": "a", "b.tmp": "ignored", "keep.tmp": "re-included", "cache/x.bin": "ignored",
             "sub/c.txt": "c", "sub/local.txt": "ignored by data/.dvcignore",
             ".hg/h": "always ignored", ".git/HEAD": "always ignored"}
    for name, text in files.items():
        (raw / name).write_text(text)
    (p / ".dvcignore").write_text("# gitignore syntax\n*.tmp\ncache/\n!keep.tmp\nvendor/\n")
    (p / "data" / ".dvcignore").write_text("local.txt\n")
    run([dvc, "add", "-q", "data/raw"], p)
    dvc_out = yaml.safe_load((p / "data" / "raw.dvc").read_text())["outs"][0]
    md5 = dvc_out["md5"]
    listing = json.loads(next((p / ".dvc" / "cache").rglob(md5.removesuffix(".dir")[2:] + ".dir"))
                         .read_text())
    assert {e["relpath"] for e in listing} == {"a.csv", "keep.tmp", "sub/c.txt"}  # DVC's view
    # A .dvc file inside an ignored directory is not part of the DVC project: not imported.
    shutil.copy(p / "data" / "raw.dvc", p / "vendor" / "raw.dvc")
    write_placeholder_lock(p)

    imported = json.loads(envbuild(p, "import-dvc", "--json").stdout)
    (ref,) = imported["refs"]
    assert (ref["path"], ref["digest"], ref["files"]) == ("data/raw", "md5:" + md5[:32], 3)
    ctx = DataContext.open(p, cache_root=tmp_path / "cache")
    scanned = scan(ctx, "data/raw", "md5", rehash=True)
    assert scanned.digest == ref["digest"] and scanned.files == 3
    assert {e.path for e in scanned.entries} == {"a.csv", "keep.tmp", "sub/c.txt"}

    assert json.loads(envbuild(p, "verify", "--json").stdout)["ok"] is True
    (raw / "new.tmp").write_text("ignored, so no change")
    assert json.loads(envbuild(p, "verify", "--json").stdout)["ok"] is True
    (raw / "keep.tmp").write_text("changed")
    failed = envbuild(p, "verify", "--json", check=False)
    assert failed.returncode == 7
    (bad,) = json.loads(failed.stdout)["refs"]
    assert bad["changes"] == [{"path": "data/raw/keep.tmp", "change": "modified"}]

    # checkout restores the tracked file from DVC's cache and leaves ignored files alone.
    envbuild(p, "checkout", "--force")
    assert (raw / "keep.tmp").read_text() == "re-included"
    assert (raw / "b.tmp").read_text() == "ignored" and (raw / "new.tmp").exists()
    assert json.loads(envbuild(p, "status", "--json").stdout)["ok"] is True
