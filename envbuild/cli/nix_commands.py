"""`envbuild nix generate` and `envbuild nix build`: the bundle's Nix flake.

Until `envbuild generate --target nix` exists, the flake is generated here; both call
`envbuild.generate.nix_write.generate_flake`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from envbuild.cli.output import EXIT_CODES, emit_json, info, progress

if TYPE_CHECKING:
    from envbuild.generate.nix import NixOptions


def _common() -> argparse.ArgumentParser:
    # The same -v / -C as every top-level command, so they also work after the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and full tool commands on errors")
    common.add_argument("-C", "--project", type=Path, default=argparse.SUPPRESS, metavar="DIR",
                        help="the project directory (default: the current one)")
    return common


def _options(args: argparse.Namespace) -> NixOptions | None:
    """The CLI's nixpkgs pin; None leaves it to the lock ([nix] in the spec) or the default."""
    from envbuild.errors import EnvbuildError
    from envbuild.generate.nix import NixOptions, NixpkgsPin

    if bool(args.nixpkgs_rev) != bool(args.nixpkgs_nar_hash):
        raise EnvbuildError("--nixpkgs-rev and --nixpkgs-nar-hash go together",
                            hint="a revision is pinned by its NAR hash: pass both, or neither")
    if not args.nixpkgs_rev:
        return None
    return NixOptions(nixpkgs=NixpkgsPin(rev=args.nixpkgs_rev, nar_hash=args.nixpkgs_nar_hash))


def cmd_nix_generate(args: argparse.Namespace) -> int:
    from envbuild.generate.nix_write import generate_flake

    written = generate_flake(args.project, options=_options(args), force=args.force)
    if args.json:
        emit_json({"ok": True, "bundle": written.bundle_id, "files": list(written.files),
                   "changed": list(written.changed), "systems": list(written.systems),
                   "paths": written.paths})
        return 0
    changed = ", ".join(written.changed) or "no file changed"
    info(f"flake for {', '.join(written.systems)} with {written.paths} hash-checked model/data "
         f"file(s) (bundle {written.bundle_id[7:19]}): {changed}")
    return 0


def _fetch_missing_model(args: argparse.Namespace) -> None:
    """The flake takes the model's files from model/: when it is not there yet, download the
    locked files (checked against the lock's digest) first. A model/ that exists is left for
    Nix to check file by file, so a changed file is reported, not silently replaced."""
    from envbuild.lock.bundle import LOCK_FILE
    from envbuild.model.package import MODEL_DIR, fetch_model

    if (args.project / MODEL_DIR).exists() or not (args.project / LOCK_FILE).is_file():
        return
    from envbuild.lock.loaded import load_bundle

    if not load_bundle(args.project).lock.model:
        return

    with progress(not args.json) as status:
        fetch_model(args.project, status=status)


def cmd_nix_build(args: argparse.Namespace) -> int:
    import platform

    from envbuild.generate.nix_tool import nix_build_argv, run_nix
    from envbuild.tools import Runner

    system = args.system or {"x86_64": "x86_64-linux", "aarch64": "aarch64-linux",
                             "arm64": "aarch64-linux"}.get(platform.machine(), "x86_64-linux")
    attr = f"packages.{system}.{args.output}"
    argv = nix_build_argv(args.project, attr, override_nixpkgs=args.nixpkgs)
    _fetch_missing_model(args)
    out = run_nix(Runner(), argv, what=f"nix build .#{attr}")
    if args.json:
        import json

        emit_json({"ok": True, "output": attr, "result": json.loads(out or "[]")})
    else:
        info(f"built .#{attr}")
    return 0


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    nix = command("nix", "generate and build the bundle's Nix flake",
                  "The bundle as a Nix flake (flake.nix + flake.lock next to envbuild.lock).\n\n"
                  "examples:\n  envbuild nix generate\n  envbuild nix build data",
                  lambda args: 2)
    sub = nix.add_subparsers(dest="nix_command", metavar="SUBCOMMAND", required=True)

    def subcommand(name: str, help_text: str, description: str,
                   handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text, description=description, epilog=EXIT_CODES,
                                parents=[_common()],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.set_defaults(handler=handler)
        parser.add_argument("--json", action="store_true", help="print a JSON result on stdout")
        return parser

    gen = subcommand(
        "generate", "write flake.nix and flake.lock from envbuild.lock",
        "Write flake.nix and flake.lock from envbuild.lock alone: the lock's wheels fetched by\n"
        "sha256 for every target platform, nixpkgs pinned to one revision, the environment,\n"
        "a dev shell and a layered image. Generating twice changes no byte.\n\n"
        "example:\n  envbuild nix generate && nix flake show", cmd_nix_generate)
    gen.add_argument("--nixpkgs-rev", metavar="REV",
                     help="pin nixpkgs to this commit (default: a nixos-25.11 commit)")
    gen.add_argument("--nixpkgs-nar-hash", metavar="SRI",
                     help="the NAR hash of that commit's source (sha256-...), as flake.lock records it")
    gen.add_argument("--force", action="store_true",
                     help="replace a flake.nix that envbuild did not generate")

    build = subcommand(
        "build", "nix build one output of the generated flake",
        "Run `nix build` on an output of the generated flake. `data` builds the hash-checked\n"
        "model and data paths (Nix refuses a changed file: exit 7).\n\n"
        "examples:\n  envbuild nix build data\n  envbuild nix build default --system aarch64-linux",
        cmd_nix_build)
    build.add_argument("output", nargs="?", default="default",
                       choices=("default", "data", "image"), help="the output (default: default)")
    build.add_argument("--system", help="the Nix system (default: this machine's)")
    build.add_argument("--nixpkgs", type=Path, metavar="DIR",
                       help="use this local nixpkgs checkout instead of the pinned revision")
