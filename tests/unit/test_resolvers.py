from __future__ import annotations

import sys

import pytest

from envbuild.errors import LockError, NetworkError, ToolError
from envbuild.lock.resolvers import (
    ResolveRequest,
    classify_failure,
    parse_pinned_requirements,
    pip_compile_argv,
    requirements_in,
    resolve,
    resolve_pip_tools,
    uv_argv,
)
from envbuild.tools import Result, Runner


def request(**kw: object) -> ResolveRequest:
    base: dict[str, object] = {"requirements": ("pandas>=2", "six"), "python": "3.11", "index_url": None}
    return ResolveRequest(**{**base, **kw})  # type: ignore[arg-type]


def test_uv_argv() -> None:
    assert uv_argv("uv", request()) == [
        "uv", "pip", "compile", "requirements.in", "--output-file", "pylock.toml",
        "--format", "pylock.toml", "--universal", "--python-version", "3.11",
        "--no-header", "--no-config", "--quiet"]
    argv = uv_argv("uv", request(index_url="https://i/simple", upgrade_packages=("a", "b")))
    assert argv[-6:] == ["--index-url", "https://i/simple", "--upgrade-package", "a",
                         "--upgrade-package", "b"]
    assert uv_argv("uv", request(upgrade=True))[-1] == "--upgrade"


def test_pip_compile_argv() -> None:
    argv = pip_compile_argv("/py", request())
    assert argv[:4] == ["/py", "-m", "piptools", "compile"]
    assert "--generate-hashes" in argv
    assert argv[argv.index("--index-url") + 1] == "https://pypi.org/simple"


def test_requirements_in() -> None:
    assert requirements_in(["a", "b"]) == "a\nb\n"


def test_parse_pinned_requirements() -> None:
    text = ("numpy==2.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n"
            "pywin32==311 ; sys_platform == 'win32' \\\n    --hash=sha256:cc\n# comment\n")
    assert parse_pinned_requirements(text) == [
        ("numpy", "2.0", None, ("aa", "bb")),
        ("pywin32", "311", "sys_platform == 'win32'", ("cc",)),
    ]


def tool_error(stderr: str) -> ToolError:
    return ToolError("failed", argv=["x"], returncode=1, stderr=stderr)


def test_classify_failures() -> None:
    unsat = classify_failure(tool_error("  × No solution found when resolving dependencies:\n"
                                        "  ╰─▶ Because nopkg was not found ..."), "uv", "idx")
    assert isinstance(unsat, LockError) and "cannot be satisfied" in unsat.message
    net = classify_failure(tool_error("error: Failed to fetch: `https://i/simple/x/`"), "uv", "idx")
    assert isinstance(net, NetworkError) and "idx" in net.message
    built = classify_failure(tool_error(
        "error: metadata-generation-failed\n\n× Encountered error while generating package "
        "metadata.\n╰─> grpcio\n"), "pip-compile", "idx")
    assert isinstance(built, LockError) and "grpcio" in built.message
    assert "wheels" in built.hint
    other = tool_error("segfault")
    assert classify_failure(other, "uv", "idx") is other


class FakeRunner(Runner):
    def __init__(self, files: dict[str, str]) -> None:
        super().__init__()
        self.files = files
        self.calls: list[list[str]] = []

    def run(self, argv, *, cwd=None, env=None, check=True, timeout=None, what=""):  # type: ignore[no-untyped-def, override]
        self.calls.append(list(argv))
        assert cwd is not None
        assert (cwd / "requirements.in").read_text() == "pandas>=2\nsix\n"
        for name, text in self.files.items():
            (cwd / name).write_text(text)
        return Result(argv=tuple(argv), returncode=0, stdout="", stderr="")


def test_pip_tools_backend_finds_urls_by_hash() -> None:
    out = "six==1.16.0 \\\n    --hash=sha256:" + "1" * 64 + "\n"
    runner = FakeRunner({"requirements.txt": out})

    def fetch(index: str, names: list[str]) -> dict[str, list[dict[str, object]]]:
        assert names == ["six"]
        return {"six": [
            {"filename": "six-1.16.0-py2.py3-none-any.whl", "url": "https://f/six.whl",
             "hashes": {"sha256": "1" * 64}, "size": 11},
            {"filename": "six-1.16.0.tar.gz", "url": "https://f/six.tgz",
             "hashes": {"sha256": "2" * 64}},
            {"filename": "six-1.15.0-py2.py3-none-any.whl", "url": "https://f/old.whl",
             "hashes": {"sha256": "3" * 64}},
        ]}

    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    cands = resolve_pip_tools(request(python=py), runner, fetch_files=fetch)
    assert cands == [{"name": "six", "version": "1.16.0", "wheels": [
        {"name": "six-1.16.0-py2.py3-none-any.whl", "url": "https://f/six.whl", "size": 11,
         "hashes": {"sha256": "1" * 64}}]}]


def test_pip_tools_refuses_another_python() -> None:
    with pytest.raises(LockError, match="pip-tools resolves for the interpreter"):
        resolve_pip_tools(request(python="3.9"), FakeRunner({}))


def test_unknown_backend() -> None:
    with pytest.raises(LockError, match="unknown resolver"):
        resolve("poetry", request(), FakeRunner({}))
