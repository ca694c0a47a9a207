"""One function per command: call the library, render the result. Returns the exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from envbuild.cli.output import emit_json, info, note, progress
from envbuild.errors import SpecError


def cmd_init(args: argparse.Namespace) -> int:
    from envbuild.files import write_atomic
    from envbuild.lock.registry import ImageRef
    from envbuild.spec.init import bundle_name, detect_sources, render_init_spec

    project = args.project.resolve()
    target = project / "envbuild.toml"
    if target.exists() and not args.force:
        raise SpecError("already exists", file="envbuild.toml",
                        hint="pass --force to overwrite it")
    if args.base:
        try:
            ImageRef.parse(args.base)
        except ValueError as exc:
            raise SpecError(f"--base: {exc}", file="envbuild.toml", key="image.base",
                            hint="write it as registry/repository:tag") from None
    python = args.python or f"{sys.version_info.major}.{sys.version_info.minor}"
    text = render_init_spec(name=args.name or bundle_name(project.name), python=python,
                            requirements=detect_sources(project), base=args.base)
    write_atomic(target, text)
    info(f"wrote {target}")
    if not args.base:
        note("no base image given: `envbuild lock` will lock the Python side only "
             "(pass --base IMAGE for image targets)")
    return 0


def _lock_summary(lock: Any) -> dict[str, Any]:
    return {
        "bundle": lock.bundle_id,
        "name": lock.name,
        "python": lock.python.version,
        "platforms": list(lock.python.platforms),
        "packages": lock.python.packages,
        "base_image": lock.image.base,
        "resolver": lock.resolver,
    }


def cmd_lock(args: argparse.Namespace) -> int:
    from envbuild.errors import StaleLockError
    from envbuild.lock.service import check_project, lock_project

    project = args.project
    if args.check:
        try:
            lock = check_project(project)
        except StaleLockError as exc:
            if args.json:
                emit_json({"ok": False, "fresh": False, "changed": list(exc.changed),
                           "error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code})
                args.json = False  # already reported
            raise
        if args.json:
            emit_json({"ok": True, "fresh": True, **_lock_summary(lock)})
        else:
            info(f"envbuild.lock is fresh (bundle {lock.short_id})")
        return 0
    with progress(not args.json) as status:
        outcome = lock_project(project, resolver=args.resolver, upgrade=args.upgrade,
                               upgrade_packages=tuple(args.upgrade_package), status=status)
    for message in outcome.notes:
        note(message)
    if args.json:
        emit_json({"ok": True, "resolved": outcome.resolved, "written": list(outcome.written),
                   "notes": list(outcome.notes), **_lock_summary(outcome.lock)})
        return 0
    lock = outcome.lock
    if not outcome.resolved:
        info(f"envbuild.lock is up to date (bundle {lock.short_id}); nothing resolved")
    else:
        changed = ", ".join(outcome.written) or "no file changed"
        info(f"locked {lock.python.packages} packages for {', '.join(lock.python.platforms)} "
             f"(bundle {lock.short_id}): {changed}")
    if lock.image.base:
        info(f"base image {lock.image.base}")
    return 0


def _model_line(model: Any) -> str:
    if not model:
        return "(none)"
    alias = f", alias {model['alias']}" if model.get("alias") else ""
    return (f"models:/{model.get('name')}/{model.get('version')}{alias}: "
            f"{len(model.get('files', {}))} file(s), {model.get('digest')}")


def cmd_show(args: argparse.Namespace) -> int:
    from envbuild.lock.loaded import load_bundle

    bundle = load_bundle(args.project)
    lock = bundle.lock
    ordered = sorted(bundle.python.packages, key=lambda p: p.sort_key)
    if args.json:
        packages = [{"name": p.name, "version": p.version, "marker": p.marker,
                     "wheels": [{"name": w.name, "sha256": w.sha256} for w in p.wheels]}
                    for p in ordered]
        emit_json({**_lock_summary(lock), "packages": packages, "inputs": dict(lock.inputs),
                   "model": dict(lock.model) or None, "data": dict(lock.data) or None,
                   "conda": _conda_packages(args.project, lock)})
        return 0
    out = sys.stdout
    out.write(f"bundle      {lock.bundle_id}\n")
    out.write(f"name        {lock.name}\n")
    out.write(f"python      {lock.python.version} on {', '.join(lock.python.platforms)}\n")
    out.write(f"base image  {lock.image.base or '(none: Python side only)'}\n")
    out.write(f"model       {_model_line(lock.model)}\n")
    refs = dict(lock.data.get("refs") or {})
    for path in sorted(refs):
        ref = refs[path]
        at = f"  (Delta table version {ref['version']})" if "version" in ref else ""
        out.write(f"data        {path}  {ref.get('digest')}{at}\n")
    out.write(f"packages    {len(ordered)} ({lock.python.lock_file}, resolved by {lock.resolver})\n")
    for p in ordered:
        marker = f"  ; {p.marker}" if p.marker else ""
        out.write(f"  {p.name}=={p.version}  [{len(p.wheels)} wheel(s)]{marker}\n")
    if conda := _conda_packages(args.project, lock):
        out.write(f"conda       {len(conda['packages'])} package(s) for "
                  f"{', '.join(conda['platforms'])} ({conda['lock_file']}; channels "
                  f"{', '.join(conda['channels'])})\n")
        for p in conda["packages"]:
            out.write(f"  {p['name']}={p['version']}={p['build']}  ({p['platform']})\n")
    return 0


def _conda_packages(project: Any, lock: Any) -> dict[str, Any] | None:
    """The [conda] table with conda-lock.yml's packages, read only when the lock has one."""
    if not lock.conda:
        return None
    from envbuild.lock.sides import read_conda_side
    from envbuild.tools import Runner

    conda = read_conda_side(project, str(project), lock, Runner())
    assert conda is not None
    return {**dict(lock.conda),
            "packages": [{"name": p.name, "version": p.version, "build": p.build,
                          "platform": p.platform, "sha256": p.sha256} for p in conda.packages]}


def cmd_diff(args: argparse.Namespace) -> int:
    from envbuild.lock.diff import diff_bundles
    from envbuild.lock.sides import read_conda_side, read_side
    from envbuild.tools import Runner

    runner = Runner()
    old = read_side(args.project, args.old, runner)
    new = read_side(args.project, args.new, runner)
    changes = diff_bundles(old, new,
                           old_conda=read_conda_side(args.project, args.old, old.lock, runner),
                           new_conda=read_conda_side(args.project, args.new, new.lock, runner))
    if args.json:
        emit_json({"ok": True, "old": old.lock.bundle_id, "new": new.lock.bundle_id,
                   "changes": [c.to_dict() for c in changes]})
    elif not changes:
        sys.stdout.write(f"no changes (bundle {new.lock.short_id})\n")
    else:
        sys.stdout.write(f"bundle {old.lock.short_id} -> {new.lock.short_id}\n")
        for change in changes:
            sys.stdout.write(f"  {change.describe()}\n")
    return 1 if changes and args.exit_code else 0


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    from envbuild.lock import RESOLVERS

    init = command("init", "write a commented envbuild.toml for this project",
                   "Write a commented envbuild.toml from the requirements.in / requirements.txt "
                   "or pyproject.toml found in the project. `envbuild lock` accepts it as it is.\n\n"
                   "example:\n  envbuild init --base 127.0.0.1:5000/envbuild/python:3.11", cmd_init)
    init.add_argument("--base", metavar="IMAGE", help="the base image (registry/repo:tag)")
    init.add_argument("--name", help="the bundle name (default: the directory's name)")
    init.add_argument("--python", help="the Python version (default: this interpreter's)")
    init.add_argument("--force", action="store_true", help="overwrite an existing envbuild.toml")

    lock = command("lock", "resolve and pin the Python packages and base image",
                   "Resolve the spec's requirements for every target platform and write\n"
                   "pylock.toml (PEP 751), requirements.txt (with --hash lines) and envbuild.lock.\n"
                   "With nothing changed it keeps every pin and resolves nothing.\n\n"
                   "examples:\n  envbuild lock\n  envbuild lock --upgrade-package pandas\n"
                   "  envbuild lock --check        # CI: non-zero when the lock is stale", cmd_lock)
    lock.add_argument("--resolver", choices=RESOLVERS,
                      help="resolver backend (default: the lock's, else uv)")
    lock.add_argument("--upgrade", action="store_true",
                      help="re-resolve everything, base image included")
    lock.add_argument("--upgrade-package", action="append", default=[], metavar="NAME",
                      help="re-resolve this package only (repeatable)")
    lock.add_argument("--check", action="store_true",
                      help="only check that the lock is fresh; write nothing (exit 5 if stale)")
    lock.add_argument("--json", action="store_true", help="print a JSON result on stdout")

    show = command("show", "print what the lock pins",
                   "Print the lock's summary: bundle id, base image, Python packages.\n\n"
                   "example:\n  envbuild show --json | jq .bundle", cmd_show)
    show.add_argument("--json", action="store_true", help="print JSON on stdout")

    diff = command("diff", "what changed between two locks",
                   "Compare two locks: packages added, removed, upgraded or downgraded (or the same\n"
                   "version with other wheel hashes), base image, model and data. Each side is a\n"
                   "lock file, a project directory, or a git revision of this project's lock.\n\n"
                   "examples:\n  envbuild diff HEAD~1 HEAD\n"
                   "  envbuild diff old/envbuild.lock new/envbuild.lock --json", cmd_diff)
    diff.add_argument("old", help="the old side: lock file, directory or git revision")
    diff.add_argument("new", help="the new side: lock file, directory or git revision")
    diff.add_argument("--json", action="store_true", help="print JSON on stdout")
    diff.add_argument("--exit-code", action="store_true",
                      help="exit 1 when the locks differ (as `git diff --exit-code`)")
