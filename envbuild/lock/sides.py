"""Read a lock for `envbuild diff`: a lock file, a project directory, or a git revision."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from envbuild.errors import EnvbuildError, IntegrityError, ToolError
from envbuild.files import sha256_bytes
from envbuild.lock.bundle import LOCK_FILE, EnvbuildLock, parse_lock
from envbuild.lock.loaded import Bundle, load_bundle, parse_bundle
from envbuild.tools import Runner

if TYPE_CHECKING:
    from envbuild.conda.lockfile import CondaLock


def git_show_argv(project: Path, revision: str, path: str) -> list[str]:
    return ["git", "-C", str(project), "show", f"{revision}:./{path}"]


def read_side(project: Path, side: str, runner: Runner) -> Bundle:
    path = Path(side)
    if path.is_dir():
        return load_bundle(path)
    if path.is_file():
        lock_text = path.read_text(encoding="utf-8")
        pylock = path.parent / parse_lock(lock_text).python.lock_file
        return parse_bundle(lock_text, pylock.read_bytes())
    try:
        lock_text = runner.run(git_show_argv(project, side, LOCK_FILE), what="git show").stdout
        pylock_name = parse_lock(lock_text, file=f"{side}:{LOCK_FILE}").python.lock_file
        # git show decodes as text; the lock files are UTF-8 with \n endings, so bytes round-trip.
        pylock_text = runner.run(git_show_argv(project, side, pylock_name), what="git show").stdout
    except ToolError as exc:
        raise EnvbuildError(
            f"{side!r} is neither a lock file, a project directory, nor a git revision that "
            f"holds {LOCK_FILE} here",
            hint="pass two paths (a/envbuild.lock b/envbuild.lock) or two revisions (HEAD~1 HEAD)",
        ) from exc
    return parse_bundle(lock_text, pylock_text.encode())


def read_conda_side(project: Path, side: str, lock: EnvbuildLock,
                    runner: Runner) -> CondaLock | None:
    """The conda-lock.yml a side's lock pins (None without a [conda] table), checked against
    the digest the lock records: a diff never reports packages the lock does not pin."""
    if not lock.conda:
        return None
    from envbuild.conda.lockfile import parse_conda_lock

    name = str(lock.conda["lock_file"])
    path = Path(side)
    if path.is_dir() or path.is_file():
        folder = path if path.is_dir() else path.parent
        if not (folder / name).is_file():
            raise EnvbuildError(f"{folder / name} is missing (the lock pins it)",
                                hint="run `envbuild lock` there, or diff two git revisions")
        data = (folder / name).read_bytes()
    else:
        data = runner.run(git_show_argv(project, side, name), what="git show").stdout.encode()
    if sha256_bytes(data) != lock.conda.get("lock_digest"):
        raise IntegrityError(f"{side}: {name} does not match the digest its envbuild.lock records",
                             hint="it was edited after locking: run `envbuild lock`")
    return parse_conda_lock(data, file=f"{side}:{name}")
