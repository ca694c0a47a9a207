"""envbuild's command line. Commands live in envbuild.cli.commands; this file parses and exits."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
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


# Each module defines `register(command)` and calls `command(name, help, description, handler)`
# for every command it owns; handlers take the parsed args and return the exit code. Modules keep
# heavy imports inside their handlers, so `--help` and no-change runs stay fast.
COMMAND_MODULES = ("envbuild.cli.commands", "envbuild.cli.nix_commands",
                   "envbuild.cli.data_commands", "envbuild.cli.model_commands",
                   "envbuild.cli.image_commands",
                   "envbuild.cli.conda_commands")


def build_parser() -> argparse.ArgumentParser:
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

    def command(name: str, help_text: str, description: str,
                handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text, description=description, epilog=EXIT_CODES,
                                parents=[common],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.set_defaults(handler=handler)
        return parser

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbose = getattr(args, "verbose", False)
    args.project = getattr(args, "project", Path("."))
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        # The reader went away (`envbuild show | head`): stop quietly, as Unix tools do.
        import contextlib
        import os

        with contextlib.suppress(Exception):  # no real stdout (e.g. captured): nothing to mute
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - rendered, never a traceback
        return report_error(exc, verbose=args.verbose, as_json=getattr(args, "json", False))


if __name__ == "__main__":
    sys.exit(main())
