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


# Which module registers each command, so that a run builds the parser of its own command only
# (importing six modules and building some 30 sub-parsers costs about 15 ms of every run, a
# no-change `data status` included). tests/unit/test_cli_contract.py checks this table against
# what the modules register.
COMMAND_MODULE = {
    "init": "envbuild.cli.commands", "lock": "envbuild.cli.commands",
    "show": "envbuild.cli.commands", "diff": "envbuild.cli.commands",
    "nix": "envbuild.cli.nix_commands", "data": "envbuild.cli.data_commands",
    "model": "envbuild.cli.model_commands", "serve": "envbuild.cli.model_commands",
    "generate": "envbuild.cli.image_commands", "build": "envbuild.cli.image_commands",
    "verify": "envbuild.cli.image_commands",
    "conda-install": "envbuild.cli.conda_commands", "conda-build": "envbuild.cli.conda_commands",
}


def command_name(argv: Sequence[str]) -> str | None:
    """The command word of argv (after the global options), or None."""
    tokens = iter(argv)
    for token in tokens:
        if token in ("-C", "--project"):
            next(tokens, None)  # its value
        elif not token.startswith("-"):
            return token
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; with argv naming a known command, only that command's sub-parser
    (and a throwaway for the others its module registers). Unknown commands, `--help` and
    `--version` get the whole parser, so their messages list every command."""
    wanted = command_name(argv) if argv is not None else None
    only = wanted if wanted in COMMAND_MODULE else None
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
        if only is not None and name != only:
            return argparse.ArgumentParser(add_help=False)  # not this run's command
        parser = sub.add_parser(name, help=help_text, description=description, epilog=EXIT_CODES,
                                parents=[common],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.set_defaults(handler=handler)
        return parser

    for module in (COMMAND_MODULE[only],) if only is not None else COMMAND_MODULES:
        importlib.import_module(module).register(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
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
