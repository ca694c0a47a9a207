"""`envbuild conda install` and `envbuild conda build`: the locked conda environment, by hash."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from envbuild.cli.output import emit_json, info, progress

CONDA_PLATFORMS = ("linux-64", "linux-aarch64")


def cmd_conda_install(args: argparse.Namespace) -> int:
    from envbuild.conda.build import install_project

    with progress(not args.json) as status:
        count = install_project(args.project, args.prefix, platform=args.platform,
                                status=status)
    if args.json:
        emit_json({"ok": True, "prefix": str(args.prefix), "platform": args.platform,
                   "packages": count})
    else:
        info(f"installed {count} conda packages for {args.platform} into {args.prefix} "
             "(each checked by sha256 against conda-lock.yml)")
    return 0


def cmd_conda_build(args: argparse.Namespace) -> int:
    from envbuild.conda.build import build_project_image

    with progress(not args.json) as status:
        outcome = build_project_image(args.project, platform=args.platform,
                                      no_cache=args.no_cache, status=status)
    if args.json:
        emit_json({"ok": True, "image_id": outcome.image_id, "platform": outcome.platform,
                   "conda_packages": outcome.conda_packages, "wheels": outcome.wheels,
                   "context": str(outcome.context)})
    else:
        info(f"built {outcome.image_id} for {outcome.platform}: {outcome.conda_packages} conda "
             f"packages in /opt/conda, {outcome.wheels} wheels in /opt/venv")
    return 0


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    install = command(
        "conda-install", "install the locked conda environment into a directory",
        "Install conda-lock.yml's packages for one platform into PREFIX. Every package is\n"
        "checked by sha256 against the lock before anything is linked; nothing is solved.\n\n"
        "example:\n  envbuild conda-install /tmp/env --platform linux-64", cmd_conda_install)
    install.add_argument("prefix", type=lambda s: Path(s).absolute(),
                         metavar="PREFIX", help="the directory to install into (replaced)")
    install.add_argument("--platform", choices=CONDA_PLATFORMS, default="linux-64")
    install.add_argument("--json", action="store_true", help="print a JSON result on stdout")

    build = command(
        "conda-build", "build an image of the locked conda environment with buildah",
        "Build an image from the pinned base: the conda packages of conda-lock.yml in\n"
        "/opt/conda (checked by sha256, no solve), then the pip part from pylock.toml in\n"
        "/opt/venv (pip --require-hashes, no index). The image id repeats on rebuild.\n\n"
        "example:\n  envbuild conda-build --platform linux-64", cmd_conda_build)
    build.add_argument("--platform", choices=CONDA_PLATFORMS, default="linux-64")
    build.add_argument("--no-cache", action="store_true", help="rerun every build step")
    build.add_argument("--json", action="store_true", help="print a JSON result on stdout")
