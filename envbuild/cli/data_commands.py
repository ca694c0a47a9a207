"""`envbuild data ...`: data refs in envbuild.lock, the object cache, remotes, imports.

Handlers call envbuild.data.service and render its results; heavy imports stay inside them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envbuild.cli.output import EXIT_CODES, emit_json, info, note

DATA_HELP = """\
Pin data by sha256 in envbuild.lock's [data] table, keep the bytes in a content-addressed cache
(~/.cache/envbuild, or ENVBUILD_CACHE, or --cache DIR), and move them to and from a remote.

examples:
  envbuild data add data/train.csv data/images   # hash, store in the cache, pin in the lock
  envbuild data status                           # what changed since the lock (stat cache: fast)
  envbuild data verify                           # re-hash everything, name every mismatch
  envbuild data push --remote s3://bucket/data   # send the objects the remote lacks
  envbuild data pull --remote s3://bucket/data   # fetch (verified) into the cache
  envbuild data checkout                         # restore the working files to the lock
  envbuild data remove data/scratch              # unpin a ref (files and cache stay)
  envbuild data import-dvc                       # adopt DVC's .dvc / dvc.lock outs (md5)
  envbuild data import-lfs                       # adopt Git LFS pointer files (sha256)
  envbuild data import-delta data/events         # pin a Delta Lake table at its newest version
"""


class _RichProgress:
    """A bar with bytes and files, on a terminal, for work big enough to wait for."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._task: Any = None
        self._files = 0

    def start(self, label: str, total_bytes: int, total_files: int) -> None:
        if total_bytes < (64 << 20) and total_files < 2000:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._files = 0
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                             TransferSpeedColumn(), TextColumn("{task.fields[files]}"),
                             TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self._bar.start()
        self._total_files = total_files
        self._task = self._bar.add_task(label, total=total_bytes or None,
                                        files=f"0/{total_files} files")

    def advance(self, nbytes: int, nfiles: int) -> None:
        if self._bar is not None:
            self._files += nfiles
            self._bar.update(self._task, advance=nbytes,
                             files=f"{self._files}/{self._total_files} files")

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _context(args: argparse.Namespace) -> Any:
    from envbuild.data.hashing import NoProgress
    from envbuild.data.service import DataContext

    show = sys.stderr.isatty() and not getattr(args, "json", False)
    return DataContext.open(args.project, cache_root=args.cache,
                            progress=_RichProgress() if show else NoProgress(), workers=args.jobs)


def _ref_row(ref: Any) -> dict[str, Any]:
    return {"path": ref.path, "kind": ref.kind, "digest": ref.digest, "size": ref.size,
            "files": ref.files, "source": ref.source, "origin": ref.origin,
            "version": ref.version}


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def cmd_add(args: argparse.Namespace) -> int:
    from envbuild.data.service import add

    outcome = add(_context(args), args.paths, cwd=args.project.absolute(), link=args.link)
    if args.json:
        emit_json({"ok": True, "refs": [_ref_row(r) for r in outcome.refs],
                   "hashed": outcome.hashed, "bundle": outcome.bundle, "changed": outcome.changed})
        return 0
    for ref in outcome.refs:
        what = f"{ref.files} files, " if ref.kind == "dir" else ""
        sys.stdout.write(f"{ref.path}  {ref.digest}  ({what}{_size(ref.size)})\n")
    info(f"{'pinned' if outcome.changed else 'unchanged'}: {len(outcome.refs)} ref(s), "
         f"{outcome.hashed} file(s) hashed; bundle {outcome.bundle.removeprefix('sha256:')[:12]}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from envbuild.data.service import remove

    outcome = remove(_context(args), args.paths, cwd=args.project.absolute())
    if args.json:
        emit_json({"ok": True, "removed": [_ref_row(r) for r in outcome.refs],
                   "bundle": outcome.bundle})
        return 0
    for ref in outcome.refs:
        sys.stdout.write(f"{ref.path}  {ref.digest}\n")
    info(f"unpinned: {len(outcome.refs)} ref(s) (files and cache untouched); "
         f"bundle {outcome.bundle.removeprefix('sha256:')[:12]}")
    return 0


def _print_states(rows: list[dict[str, Any]]) -> None:
    out = sys.stdout
    width = max((len(r["path"]) for r in rows), default=0)
    for r in rows:
        extra = f"  ({r['note']})" if r["note"] else ""
        out.write(f"{r['path']:<{width}}  {r['state']}{extra}\n")
        for change in r["changes"]:
            out.write(f"  {change['change']:<8}  {change['path']}\n")


def _report(args: argparse.Namespace, rows: list[dict[str, Any]], bad: int, hashed: int) -> None:
    if args.json:
        emit_json({"ok": not bad, "refs": rows, "hashed": hashed})
    else:
        _print_states(rows)
        info(f"{len(rows)} ref(s), {bad} changed or missing; {hashed} file(s) hashed")


def _check(args: argparse.Namespace, *, rehash: bool) -> int:
    if not rehash:
        from envbuild.data.quick import unchanged

        # Nothing changed (the usual case): answered from the stat cache and one walk, without
        # loading the rest of envbuild.data; otherwise the full check below says what changed.
        rows = unchanged(args.project, args.paths, cwd=args.project.absolute())
        if rows is not None:
            _report(args, rows, 0, 0)
            return 0
    from envbuild.data.service import check
    from envbuild.errors import IntegrityError

    outcome = check(_context(args), args.paths, rehash=rehash, cwd=args.project.absolute())
    bad = [s for s in outcome.states if not s.ok]
    rows = [s.to_dict() for s in outcome.states]
    if not rehash or not bad:
        _report(args, rows, len(bad), outcome.hashed)
        return 0
    files = [p for s in bad for p, _ in s.changes] or [s.ref.path for s in bad]
    error = IntegrityError(
        f"{len(bad)} data ref(s) do not match the lock: " + ", ".join(files[:20])
        + (" ..." if len(files) > 20 else ""),
        hint="`envbuild data checkout` restores the locked bytes; `envbuild data "
             + ("import-delta` pins a table's newest version"
                if all(s.ref.kind == "table" for s in bad) else "add` pins the new ones"))
    if args.json:
        emit_json({"ok": False, "refs": rows, "hashed": outcome.hashed, "error": error.message,
                   "hint": error.hint, "exit_code": error.exit_code})
        args.json = False  # reported already
    else:
        _print_states(rows)
    raise error


def cmd_status(args: argparse.Namespace) -> int:
    return _check(args, rehash=False)


def cmd_verify(args: argparse.Namespace) -> int:
    return _check(args, rehash=True)


def cmd_checkout(args: argparse.Namespace) -> int:
    from envbuild.data.service import checkout

    outcome = checkout(_context(args), args.paths, force=args.force, link=args.link,
                       cwd=args.project.absolute())
    if args.json:
        emit_json({"ok": True, "written": list(outcome.written), "removed": list(outcome.removed),
                   "kept_in_cache": list(outcome.kept), "unchanged": outcome.unchanged,
                   "written_by": dict(outcome.how)})
        return 0
    for path in outcome.written:
        sys.stdout.write(f"restored  {path}\n")
    for path in outcome.removed:
        sys.stdout.write(f"removed   {path}\n")
    if outcome.kept:
        note(f"{len(outcome.kept)} modified file(s) were overwritten (--force); their bytes "
             "are in the cache")
    how = ", ".join(f"{n} {mode}" for mode, n in outcome.how)
    info(f"{len(outcome.written)} file(s) restored{f' ({how})' if how else ''}, "
         f"{len(outcome.removed)} removed, {outcome.unchanged} already matched")
    return 0


def _transfer(args: argparse.Namespace, *, direction: str) -> int:
    from envbuild.data import service

    ctx = _context(args)
    url = service.remote_url(ctx.project, args.remote)
    fn = service.push if direction == "push" else service.pull
    outcome = fn(ctx, url, args.paths, cwd=args.project.absolute())
    if args.json:
        emit_json({"ok": True, "remote": url, "objects": outcome.sent,
                   "already_there": outcome.present, "bytes": outcome.bytes})
        return 0
    verb = "pushed to" if direction == "push" else "pulled from"
    info(f"{verb} {url}: {outcome.sent} object(s) ({_size(outcome.bytes)}), "
         f"{outcome.present} already there")
    if direction == "pull":
        info("run `envbuild data checkout` to restore the working files")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    return _transfer(args, direction="push")


def cmd_pull(args: argparse.Namespace) -> int:
    return _transfer(args, direction="pull")


def _imported(args: argparse.Namespace, outcome: Any) -> int:
    if args.json:
        emit_json({"ok": True, "refs": [_ref_row(r) for r in outcome.refs],
                   "sources": list(outcome.sources), "bundle": outcome.bundle})
        return 0
    for ref in outcome.refs:
        at = f", version {ref.version}" if ref.version is not None else ""
        sys.stdout.write(f"{ref.path}  {ref.digest}  (from {ref.origin}{at})\n")
    info(f"imported {len(outcome.refs)} ref(s); bundle "
         f"{outcome.bundle.removeprefix('sha256:')[:12]}")
    return 0


def cmd_import_dvc(args: argparse.Namespace) -> int:
    from envbuild.data.service import import_dvc

    return _imported(args, import_dvc(_context(args), args.paths, cwd=args.project.absolute()))


def cmd_import_lfs(args: argparse.Namespace) -> int:
    from envbuild.data.service import import_lfs

    return _imported(args, import_lfs(_context(args), args.paths, cwd=args.project.absolute()))


def cmd_import_delta(args: argparse.Namespace) -> int:
    from envbuild.data.service import import_delta

    return _imported(args, import_delta(_context(args), args.paths, version=args.version,
                                        cwd=args.project.absolute(), link=args.link))


SUBCOMMANDS: tuple[tuple[str, str, str, Callable[[argparse.Namespace], int]], ...] = (
    ("add", "hash files and directories and pin them in envbuild.lock",
     ("Hash each PATH (a file or a directory), store its bytes in the cache and pin it in\n"
     "envbuild.lock's [data] table. With no PATH: the spec's [data] paths. Needs envbuild.lock.\n\n"
     "example:\n  envbuild data add data/train.csv data/images"), cmd_add),
    ("remove", "unpin data refs from envbuild.lock (files and cache stay)",
     ("Drop each PATH's ref from envbuild.lock's [data] table (a directory holding refs drops\n"
     "them all). The working files and the cache keep their bytes: the bundle id changes, an\n"
     "older lock still checks them out.\n\nexample:\n  envbuild data remove data/scratch"),
     cmd_remove),
    ("status", "what changed since the lock (fast: unchanged files are not read)",
     ("Compare the working data with the lock. Files whose size, mtime, inode and mode are\n"
     "unchanged are not read again (stat cache in .envbuild/). Exit 0 either way.\n\n"
     "example:\n  envbuild data status --json"), cmd_status),
    ("verify", "re-hash every data file and name every mismatch (exit 7)",
     ("Re-hash every file of every ref (or of PATHs) and compare with the lock; name every file\n"
     "that differs. Exit 7 on a mismatch.\n\nexample:\n  envbuild data verify"), cmd_verify),
    ("checkout", "restore the working files to the locked bytes",
     ("Write the locked bytes back from the cache (`data pull` first to fetch them). Refuses to\n"
     "overwrite or remove a modified file whose bytes are not in the cache, unless --force\n"
     "(which stores them in the cache first).\n\nexample:\n  envbuild data checkout data/"),
     cmd_checkout),
    ("push", "send the locked objects the remote lacks",
     ("Send every object of the refs (or of PATHs) that the remote does not hold yet.\n"
     "Remote: --remote URL or [data] remote in envbuild.toml; file:///dir or s3://bucket/prefix\n"
     "(AWS_ENDPOINT_URL for S3-compatible stores).\n\n"
     "example:\n  envbuild data push --remote s3://bucket/envbuild"), cmd_push),
    ("pull", "fetch the locked objects into the cache, verified",
     ("Fetch every object of the refs (or of PATHs) that the cache lacks; each is verified\n"
     "before it enters the cache. Then `envbuild data checkout` restores the files.\n\n"
     "example:\n  envbuild data pull --remote file:///mnt/share/envbuild"), cmd_pull),
    ("import-dvc", "adopt DVC .dvc files and dvc.lock outs (checked by md5)",
     ("Read DVC 3 .dvc files and dvc.lock outs (every one in the project when none is named)\n"
     "and pin them as refs checked by DVC's md5: nothing is re-hashed. `data add PATH` later\n"
     "re-pins a path by sha256.\n\nexample:\n  envbuild data import-dvc data.dvc dvc.lock"),
     cmd_import_dvc),
    ("import-lfs", "adopt Git LFS pointer files (same sha256)",
     ("Pin Git LFS pointer files (every one in the project when none is named) as refs: an LFS\n"
     "oid is the file's sha256. A named file holding real content is hashed instead.\n\n"
     "example:\n  envbuild data import-lfs models/weights.bin"), cmd_import_lfs),
    ("import-delta", "pin Delta Lake tables at a version",
     ("Pin each Delta Lake table directory at a version (--version N; default the newest): the\n"
     "ref holds what a reader of N needs from _delta_log (the commits, or the newest checkpoint\n"
     "and the commits after it) and the data files active at N, hashed by sha256 and stored\n"
     "in the cache as by add. Files of later versions are not part of it, so the\n"
     "table may move on; status and verify check version N's files, checkout restores them.\n"
     "Read it back with DeltaTable(path, version=N) (`envbuild show` prints N).\n\n"
     "example:\n  envbuild data import-delta data/events --version 3"), cmd_import_delta),
)


_PATHS_HELP = {"import-dvc": "files to import", "import-lfs": "files to import",
               "import-delta": "table directories",
               "remove": "the refs to unpin: a ref's path, or a directory holding refs"}


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    def usage(args: argparse.Namespace) -> int:
        data.print_help()  # `envbuild data` alone: the list of subcommands, exit 2
        return 2

    data = command("data", "pin data by sha256; cache, remotes, DVC / Git LFS / Delta import",
                   DATA_HELP, usage)
    # The same -v / -C flags as every command (SUPPRESS: they may stand anywhere).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")
    common.add_argument("-C", "--project", type=Path, default=argparse.SUPPRESS, metavar="DIR",
                        help="the project directory (default: the current one)")
    common.add_argument("--cache", type=Path, metavar="DIR",
                        help="the object cache (default: $ENVBUILD_CACHE or ~/.cache/envbuild)")
    common.add_argument("--json", action="store_true", help="print a JSON result on stdout")
    common.add_argument("-j", "--jobs", type=int, metavar="N",
                        help="hashing worker processes (default: one per CPU)")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    from envbuild.data import LINKS

    for name, help_text, description, handler in SUBCOMMANDS:
        p = sub.add_parser(name, help=help_text, description=description, epilog=EXIT_CODES,
                           parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        p.add_argument("paths", nargs="*", metavar="PATH", help=_PATHS_HELP.get(
            name, "data paths (default: every ref; for add: the spec's [data] paths)"))
        if name == "import-delta":
            p.add_argument("--version", type=int, metavar="N",
                           help="the table version to pin (default: the newest)")
        if name in ("add", "import-delta"):
            p.add_argument("--link", choices=LINKS, default="auto",
                           help="how files enter the cache: auto (reflink where the file "
                                "system can, else copy), reflink (clone or fail), copy, or "
                                "hardlink (no copy; the working files become read-only and "
                                "share the cache's inode)")
        if name == "checkout":
            p.add_argument("--force", action="store_true",
                           help="overwrite modified files (their bytes go to the cache first)")
            p.add_argument("--link", choices=LINKS, default="auto",
                           help="how files leave the cache: auto (reflink, else copy), reflink, "
                                "hardlink (read-only, shares the cache object) or copy")
        if name in ("push", "pull"):
            p.add_argument("--remote", metavar="URL",
                           help="file:///dir or s3://bucket/prefix (default: [data] remote)")
