"""envbuild's command line. Commands live in envbuild.cli.commands; this file parses and exits."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from envbuild import __version__
from envbuild.cli.output import EXIT_CODES, report_error

DESCRIPTION = """\
envbuild pins code, data, models and the environment of an ML project in one lock
(envbuild.lock) and builds from it, identically, anywhere.

typical use:
  envbuild init                 write envbuild.toml from requirements.txt / pyproject.toml
  envbuild lock                 resolve and pin everything (pylock.toml, envbuild.lock)
  envbuild lock --check         in CI: fail when the lock is stale
  envbuild show                 what the lock pins
"""


def build_parser() -> argparse.ArgumentParser:
    from envbuild.lock import RESOLVERS

    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: the flags may stand before or after the command without one hiding the other.
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and full tool commands on errors")
    common.add_argument("-C", "--project", type=Path, default=argparse.SUPPRESS, metavar="DIR",
                        help="the project directory (default: the current one)")

    parser = argparse.ArgumentParser(
        prog="envbuild", description=DESCRIPTION, epilog=EXIT_CODES, parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"envbuild {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=description, epilog=EXIT_CODES,
                              parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter)

    init = command("init", "write a commented envbuild.toml for this project",
                   "Write a commented envbuild.toml from the requirements.in / requirements.txt "
                   "or pyproject.toml found in the project. `envbuild lock` accepts it as it is.\n\n"
                   "example:\n  envbuild init --base 127.0.0.1:5000/envbuild/python:3.11")
    init.add_argument("--base", metavar="IMAGE", help="the base image (registry/repo:tag)")
    init.add_argument("--name", help="the bundle name (default: the directory's name)")
    init.add_argument("--python", help="the Python version (default: this interpreter's)")
    init.add_argument("--force", action="store_true", help="overwrite an existing envbuild.toml")

    lock = command("lock", "resolve and pin the Python packages and base image",
                   "Resolve the spec's requirements for every target platform and write\n"
                   "pylock.toml (PEP 751), requirements.txt (with --hash lines) and envbuild.lock.\n"
                   "With nothing changed it keeps every pin and resolves nothing.\n\n"
                   "examples:\n  envbuild lock\n  envbuild lock --upgrade-package pandas\n"
                   "  envbuild lock --check        # CI: non-zero when the lock is stale")
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
                   "example:\n  envbuild show --json | jq .bundle")
    show.add_argument("--json", action="store_true", help="print JSON on stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbose = getattr(args, "verbose", False)
    args.project = getattr(args, "project", Path("."))
    from envbuild.cli import commands

    handler = getattr(commands, f"cmd_{args.command}")
    try:
        return int(handler(args))
    except (Exception, KeyboardInterrupt) as exc:  # rendered, never a bare traceback
        return report_error(exc, verbose=args.verbose, as_json=getattr(args, "json", False))


if __name__ == "__main__":
    sys.exit(main())
