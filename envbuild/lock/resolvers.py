"""Resolver backends: uv (default) and pip-tools. Both return pylock-shaped candidate packages.

Each backend resolves a normalised requirements.in in a scratch directory; the previous lock's
pins are put where the tool reads its previous output, so unchanged pins are kept (as `uv lock`
does) unless --upgrade / --upgrade-package says otherwise. Both resolve against the spec's index
and ignore the machine's own pip/uv configuration, so the result is the same on every machine.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.errors import LockError, NetworkError, ToolError
from envbuild.lock import RESOLVERS
from envbuild.tools import Runner

DEFAULT_INDEX = "https://pypi.org/simple"
RESOLVE_TIMEOUT = 900.0


@dataclass(frozen=True, kw_only=True, slots=True)
class ResolveRequest:
    requirements: tuple[str, ...]
    python: str
    index_url: str | None
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    previous_pylock: str | None = None  # text of the last pylock.toml, as preferences
    previous_requirements: str | None = None  # text of the last requirements.txt


def requirements_in(requirements: Sequence[str]) -> str:
    return "".join(f"{r}\n" for r in requirements)


def _upgrade_args(req: ResolveRequest) -> list[str]:
    if req.upgrade:
        return ["--upgrade"]
    return [a for name in req.upgrade_packages for a in ("--upgrade-package", name)]


# ---- uv ---------------------------------------------------------------------------------------


def uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise ToolError("uv is not installed", argv=["uv"], returncode=127,
                            hint="pip install uv, or use --resolver pip-tools") from None
        return found


def uv_argv(uv: str, req: ResolveRequest) -> list[str]:
    argv = [uv, "pip", "compile", "requirements.in", "--output-file", "pylock.toml",
            "--format", "pylock.toml", "--universal", "--python-version", req.python,
            "--no-header", "--no-config", "--quiet"]
    if req.index_url:
        argv += ["--index-url", req.index_url]
    return argv + _upgrade_args(req)


_EXPLANATIONS = (
    (r"No matching distribution found for (\S+)", "no version of {0} is on the index"),
    (r"Could not find a version that satisfies the requirement (\S+)", "no version of {0} fits"),
    (r"Requirements conflict: (.+)", "conflicting requirements: {0}"),
    (r"╰─▶ (.+)", "{0}"),
)


def _explain(text: str) -> str:
    """The one line of a resolver's failure that says why."""
    for pattern, template in _EXPLANATIONS:
        if match := re.search(pattern, text):
            return template.format(match.group(1).strip())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "the resolver gave no reason"


def classify_failure(exc: ToolError, tool: str, index: str) -> LockError | NetworkError | ToolError:
    """Turn a resolver's failure into the error a user can act on."""
    text = exc.stderr
    lower = text.lower()
    if any(s in lower for s in ("failed to fetch", "dns error", "connection refused",
                                "could not connect", "failed to establish a new connection", "newconnectionerror",
                                "max retries exceeded", "network is unreachable",
                                "error sending request")):
        return NetworkError(f"{tool} could not reach the package index {index}",
                            hint="check the network and index_url in the spec; "
                            "a lock that is up to date needs no network")
    built = re.search(r"(?:Failed to build|metadata-generation-failed.*?╰─>)\s*([A-Za-z0-9_.-]+)",
                      text, re.DOTALL) or re.search(r"[Ff]ailed to (?:build|download)\s+`?([A-Za-z0-9_.-]+)", text)
    if built or "subprocess-exited-with-error" in lower:
        name = built.group(1) if built else "a package"
        return LockError(f"{tool} fell back to building {name} from source, and the build failed",
                         hint=f"pin a version of {name} (or of the package that pulls it in) "
                         "that ships wheels, or use the uv resolver")
    if "no solution found" in lower or "resolutionimpossible" in lower or \
            "could not find a version" in lower or "no matching distribution" in lower:
        return LockError(f"the requirements cannot be satisfied: {_explain(text)}",
                         hint=f"{tool}'s own words are above; loosen or fix the named requirement")
    return exc


def resolve_uv(req: ResolveRequest, runner: Runner) -> list[dict[str, Any]]:
    uv = uv_binary()
    with tempfile.TemporaryDirectory(prefix="envbuild-uv-") as tmp:
        work = Path(tmp)
        (work / "requirements.in").write_text(requirements_in(req.requirements))
        if req.previous_pylock is not None:
            (work / "pylock.toml").write_text(req.previous_pylock)
        try:
            runner.run(uv_argv(uv, req), cwd=work, timeout=RESOLVE_TIMEOUT, what="uv pip compile")
        except ToolError as exc:
            raise classify_failure(exc, "uv", req.index_url or DEFAULT_INDEX) from exc
        data = tomllib.loads((work / "pylock.toml").read_text())
    return list(data.get("packages", []))


# ---- pip-tools --------------------------------------------------------------------------------


def pip_compile_argv(python: str, req: ResolveRequest) -> list[str]:
    return [python, "-m", "piptools", "compile", "requirements.in",
            "--output-file", "requirements.txt", "--generate-hashes", "--allow-unsafe",
            "--strip-extras", "--no-header", "--no-annotate", "--quiet",
            "--index-url", req.index_url or DEFAULT_INDEX, *_upgrade_args(req)]


# pip reads these from the environment; unset them so the machine's setup does not leak in.
_PIP_ENV_UNSET = {"PIP_FIND_LINKS": None, "PIP_INDEX_URL": None, "PIP_EXTRA_INDEX_URL": None,
                  "PIP_CONSTRAINT": None, "PIP_CONFIG_FILE": "/dev/null"}


def parse_pinned_requirements(text: str) -> list[tuple[str, str, str | None, tuple[str, ...]]]:
    """`name==version ; marker --hash=sha256:...` lines -> (name, version, marker, hashes)."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if not line:
            continue
        hashes = tuple(re.findall(r"--hash[=\s]sha256:([0-9a-f]+)", line))
        spec = re.sub(r"\s*--hash[=\s]\S+", "", line)
        head, _, marker = spec.partition(";")
        name, _, version = head.strip().partition("==")
        out.append((name.strip(), version.strip(), marker.strip() or None, hashes))
    return out


def resolve_pip_tools(
    req: ResolveRequest, runner: Runner,
    fetch_files: Callable[[str, list[str]], dict[str, list[dict[str, Any]]]] | None = None,
) -> list[dict[str, Any]]:
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if ".".join(req.python.split(".")[:2]) != running:
        raise LockError(
            f"pip-tools resolves for the interpreter it runs on (Python {running}), "
            f"and the spec asks for Python {req.python}",
            hint="use the default uv resolver, which resolves for any Python version",
        )
    index = req.index_url or DEFAULT_INDEX
    with tempfile.TemporaryDirectory(prefix="envbuild-piptools-") as tmp:
        work = Path(tmp)
        (work / "requirements.in").write_text(requirements_in(req.requirements))
        if req.previous_requirements is not None:
            (work / "requirements.txt").write_text(req.previous_requirements)
        try:
            runner.run(pip_compile_argv(sys.executable, req), cwd=work, env=_PIP_ENV_UNSET,
                       timeout=RESOLVE_TIMEOUT, what="pip-compile")
        except ToolError as exc:
            raise classify_failure(exc, "pip-compile", index) from exc
        pins = parse_pinned_requirements((work / "requirements.txt").read_text())
    # pip-compile gives hashes but no URLs: find each file on the index's simple API by hash.
    from envbuild.lock.simple_api import fetch_project_files

    fetch = fetch_files or (lambda idx, names: fetch_project_files(idx, names))
    files = fetch(index, [name for name, _, _, _ in pins])
    candidates = []
    for name, version, marker, hashes in pins:
        wanted = set(hashes)
        found = [f for f in files.get(name, []) if f["hashes"].get("sha256") in wanted]
        wheels = [f for f in found if f["filename"].endswith(".whl")]
        sdists = [f for f in found if not f["filename"].endswith(".whl")]
        cand: dict[str, Any] = {
            "name": name, "version": version,
            "wheels": [{"name": f["filename"], "url": f["url"], "size": f.get("size"),
                        "hashes": {"sha256": f["hashes"]["sha256"]}} for f in wheels],
        }
        if marker:
            cand["marker"] = marker
        if sdists:
            cand["sdist"] = {"url": sdists[0]["url"]}
        candidates.append(cand)
    return candidates


def resolve(backend: str, req: ResolveRequest, runner: Runner) -> list[dict[str, Any]]:
    if backend == "uv":
        return resolve_uv(req, runner)
    if backend == "pip-tools":
        return resolve_pip_tools(req, runner)
    raise LockError(f"unknown resolver {backend!r}", hint=f"choose one of {', '.join(RESOLVERS)}")
