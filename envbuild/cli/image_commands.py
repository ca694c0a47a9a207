"""`envbuild generate`, `envbuild build` and `envbuild verify`: images from the lock."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envbuild.cli.output import emit_json, info, note, progress

BUILDERS = ("buildah", "podman", "docker")


def cmd_generate(args: argparse.Namespace) -> int:
    if args.target == "nix":  # the same lock, as a flake (envbuild nix generate)
        from envbuild.cli.nix_commands import cmd_nix_generate

        return cmd_nix_generate(args)
    from envbuild.generate.context import generate_bundle

    with progress(not args.json) as status:
        outcome = generate_bundle(args.project, out=args.out, platform=args.platform,
                                  status=status)
    if args.json:
        emit_json({"ok": True, "directory": str(outcome.directory), "platform": outcome.platform,
                   "wheels": outcome.wheels, "code_files": outcome.code_files,
                   "model_files": outcome.model_files, "changed": list(outcome.changed)})
        return 0
    changed = f"{len(outcome.changed)} file(s) changed" if outcome.changed else "no byte changed"
    info(f"generated {outcome.directory} for {outcome.platform}: Dockerfile, .dockerignore, "
         f"sbom.cdx.json, {outcome.wheels} wheels, {outcome.code_files} code files, "
         f"{outcome.model_files} model files ({changed})")
    return 0


def _build_summary(outcome: Any) -> dict[str, Any]:
    build = outcome.build
    return {"image_id": build.image_id, "tag": build.tag, "builder": build.builder,
            "platform": build.platform, "layers": list(build.layers),
            "reproducible": build.reproducible, "oci_archive_digest": build.oci_archive_digest,
            "context": str(outcome.context)}


def cmd_build(args: argparse.Namespace) -> int:
    from envbuild.build.record import RECORD_FILE
    from envbuild.build.service import build_image

    with progress(not args.json) as status:
        outcome = build_image(args.project, builder=args.builder, platform=args.platform,
                              status=status, context=args.out, oci_archive=args.oci_archive,
                              load_docker=args.load_docker, record=not args.no_record,
                              cache=not args.no_cache)
    for warning in outcome.warnings:
        note(warning)
    if args.json:
        emit_json({"ok": True, **_build_summary(outcome), "warnings": list(outcome.warnings)})
        return 0
    build = outcome.build
    info(f"built {build.tag} with {build.builder} ({build.platform}, {len(build.layers)} layers)")
    info(f"image id {build.image_id}")
    if build.oci_archive_digest:
        info(f"OCI archive manifest {build.oci_archive_digest}")
    if not args.no_record:
        info(f"recorded in {RECORD_FILE}" + ("" if outcome.changed_record else " (unchanged)"))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import sys

    from envbuild.build.verify import Check, rebuild_check, run_checks
    from envbuild.verify import data_check, generated_check, lock_check, model_check

    project = args.project
    checks: list[tuple[str, Check]] = [
        (name, check) for name, check in (
            ("lock", lambda: lock_check(project)),
            ("generated", lambda: generated_check(project)),
            ("data", lambda: data_check(project)),
            ("model", lambda: model_check(project)),
        ) if name not in args.skip
    ]
    with progress(not args.json) as status:
        if args.rebuild:
            checks.append(("rebuild", lambda: rebuild_check(
                args.project, builder=args.builder, platform=args.platform, runner=None,
                status=status)))
        results = run_checks(checks)
    failed = [r for r in results if not r.ok]
    if args.json:
        emit_json({"ok": not failed, "checks": [
            {"name": r.name, "ok": r.ok, "summary": r.summary, "details": list(r.details),
             "exit_code": r.error.exit_code if r.error else 0} for r in results]})
    else:
        for r in results:
            sys.stderr.write(f"{'ok' if r.ok else 'FAIL'}  {r.name}: {r.summary}\n")
            for line in r.details:
                sys.stderr.write(f"      {line}\n")
    if failed:
        first = failed[0].error
        assert first is not None
        args.json = False  # reported above
        raise first
    return 0


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--platform", metavar="OS/ARCH",
                            help="the image platform (default: this machine's, e.g. linux/amd64; "
                            "another one needs CPU emulation)")
        parser.add_argument("--json", action="store_true", help="print a JSON result on stdout")

    gen = command(
        "generate", "write the image bundle: Dockerfile, .dockerignore, SBOM, wheels, model, code",
        "Write, from envbuild.lock alone, the image bundle directory (default\n"
        ".envbuild/bundle): a Dockerfile with the base pinned by digest, .dockerignore, a\n"
        "CycloneDX SBOM, the platform's wheels (fetched and checked against the lock's sha256),\n"
        "the locked model's files (model/, checked against the lock's model digest; downloaded\n"
        "from the registry when missing) and the [image] code paths. Running it again changes\n"
        "no byte.\n\n"
        "examples:\n  envbuild generate\n  envbuild generate --out build/image && "
        "hadolint build/image/Dockerfile\n  envbuild generate --target nix", cmd_generate)
    gen.add_argument("--target", choices=("docker", "nix"), default="docker",
                     help="docker: the image bundle (default); nix: flake.nix and flake.lock "
                     "next to the lock, as `envbuild nix generate` writes them")
    gen.add_argument("--out", type=Path, metavar="DIR",
                     help="the bundle directory (default: .envbuild/bundle in the project)")
    gen.add_argument("--nixpkgs-rev", metavar="REV",
                     help="with --target nix: the nixpkgs revision (default: the spec's [nix], "
                     "else envbuild's pin)")
    gen.add_argument("--nixpkgs-nar-hash", metavar="SRI",
                     help="with --target nix: that revision's NAR hash")
    gen.add_argument("--force", action="store_true",
                     help="with --target nix: replace a flake.nix envbuild did not write")
    common(gen)

    build = command(
        "build", "build the image and record its digest",
        "Generate the bundle, build the image and record its image id (config digest) in\n"
        "envbuild.build.json next to the lock. buildah and podman give the same id on every\n"
        "rebuild (--timestamp 0); docker without buildx uses the classic builder, whose id\n"
        "does not repeat. The image is tagged <name>:<bundle id> only after a successful build.\n\n"
        "examples:\n  envbuild build\n  envbuild build --oci-archive churn.oci.tar --load-docker",
        cmd_build)
    build.add_argument("--builder", choices=BUILDERS, default="buildah",
                       help="the image builder (default: buildah)")
    build.add_argument("--out", type=Path, metavar="DIR",
                       help="the bundle directory (default: .envbuild/bundle in the project)")
    build.add_argument("--oci-archive", type=Path, metavar="PATH",
                       help="also write the image as an OCI archive")
    build.add_argument("--load-docker", action="store_true",
                       help="also load the image into the Docker engine")
    build.add_argument("--no-record", action="store_true",
                       help="do not write envbuild.build.json")
    build.add_argument("--no-cache", action="store_true",
                       help="rerun every step instead of reusing cached layers")
    common(build)

    verify = command(
        "verify", "the CI gate: lock, generated files, data, model (and --rebuild)",
        "Run every check in order and report each as ok or FAIL:\n"
        "  lock       the lock is fresh against the spec and requirement files   (exit 5)\n"
        "  generated  the image bundle and flake on disk equal what the lock\n"
        "             generates now                                              (exit 10)\n"
        "  data       data refs match the lock (unchanged files are not re-read) (exit 11)\n"
        "  model      model/ holds exactly the locked model's files              (exit 12)\n"
        "  rebuild    with --rebuild: rebuild the image without any layer cache and compare\n"
        "             its image id with envbuild.build.json; on a mismatch name each differing\n"
        "             layer and file and what differs (content, mode, owner, time) (exit 9)\n"
        "The exit code is the first failing check's.\n\n"
        "examples:\n  envbuild verify\n  envbuild verify --rebuild --json", cmd_verify)
    verify.add_argument("--rebuild", action="store_true",
                        help="rebuild the image from scratch and compare digests")
    verify.add_argument("--skip", action="append", default=[], metavar="CHECK",
                        choices=("lock", "generated", "data", "model"),
                        help="leave one check out (repeatable), e.g. --skip lock where the "
                        "model registry a [model] alias lives in is not reachable")
    verify.add_argument("--builder", choices=BUILDERS, default="buildah",
                        help="the builder of the recorded build (default: buildah)")
    common(verify)
