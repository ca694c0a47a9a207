"""`envbuild model package|promote|rollback|history` and `envbuild serve`.

mlflow and bentoml are imported only inside the handlers that need them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from envbuild.cli.output import emit_json, info, progress
from envbuild.errors import EnvbuildError


def _tracking_uri(args: argparse.Namespace) -> str:
    from envbuild.model.pin import DEFAULT_TRACKING_URI
    from envbuild.spec import load_spec

    if args.tracking_uri:
        return str(args.tracking_uri)
    try:
        spec = load_spec(args.project)
    except EnvbuildError:  # no spec here: the embedded default store in this directory
        return DEFAULT_TRACKING_URI
    if spec.model is not None and spec.model.tracking_uri:
        return spec.model.tracking_uri
    return DEFAULT_TRACKING_URI


def _bentoml_home(args: argparse.Namespace) -> Path | None:
    return Path(args.bentoml_home) if getattr(args, "bentoml_home", None) else None


def cmd_package(args: argparse.Namespace) -> int:
    from envbuild.model.package import package_model

    with progress(not args.json) as status:
        outcome = package_model(args.project, bentoml_home=_bentoml_home(args), status=status)
    if args.json:
        emit_json({"ok": True, "model_tag": outcome.model_tag, "bento_tag": outcome.bento_tag,
                   "imported": outcome.imported, "built": outcome.built})
        return 0
    model = "imported" if outcome.imported else "already in the store"
    bento = "built" if outcome.built else "already built"
    info(f"model {outcome.model_tag}: {model}")
    info(f"bento {outcome.bento_tag}: {bento}")
    info(f"serve it: envbuild serve   (or: bentoml serve {outcome.bento_tag} --host 127.0.0.1)")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from envbuild.model.package import fetch_model

    with progress(not args.json) as status:
        target, changed = fetch_model(args.project, dest=args.dest, status=status)
    if args.json:
        emit_json({"ok": True, "path": str(target), "changed": changed})
    else:
        info(f"{target}: {'the locked model files, checked' if changed else 'already the locked model files'}")
    return 0


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _registry_call(args: argparse.Namespace, name: str) -> tuple[object, str]:
    from envbuild.model.registry import client

    uri = _tracking_uri(args)
    return client(args.project, uri), uri


def _print_move(args: argparse.Namespace, move: object) -> int:
    from envbuild.model.promote import Move

    assert isinstance(move, Move)
    if args.json:
        emit_json({"ok": True, **move.to_dict()})
    else:
        was = f"version {move.from_version}" if move.from_version else "nothing"
        info(f"{args.name}@{move.alias}: version {move.to_version} (was {was}; {move.action} "
             f"#{move.seq})")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from envbuild.model.promote import promote
    from envbuild.model.registry import mlflow_errors

    mlflow, uri = _registry_call(args, args.name)
    with mlflow_errors(f"model {args.name}", uri):
        move = promote(mlflow, args.name, args.version, args.alias, at=_now())
    return _print_move(args, move)


def cmd_rollback(args: argparse.Namespace) -> int:
    from envbuild.model.promote import rollback
    from envbuild.model.registry import mlflow_errors

    mlflow, uri = _registry_call(args, args.name)
    with mlflow_errors(f"model {args.name}", uri):
        move = rollback(mlflow, args.name, args.alias, at=_now())
    return _print_move(args, move)


def cmd_history(args: argparse.Namespace) -> int:
    from envbuild.model.promote import history
    from envbuild.model.registry import mlflow_errors

    mlflow, uri = _registry_call(args, args.name)
    with mlflow_errors(f"model {args.name}", uri):
        moves = history(mlflow, args.name, args.alias)
    if args.json:
        emit_json({"ok": True, "name": args.name, "moves": [m.to_dict() for m in moves]})
        return 0
    if not moves:
        info(f"no alias moves recorded for {args.name}")
    for m in moves:
        sys.stdout.write(f"{m.seq:>4}  {m.at}  {m.action:<8}  @{m.alias}  "
                         f"{m.from_version or '-'} -> {m.to_version}\n")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from envbuild.generate.bento import bento_version
    from envbuild.lock.loaded import load_bundle
    from envbuild.model.package import serve_argv
    from envbuild.model.pin import bento_tag
    from envbuild.tools import QUIET_ENV

    bundle = load_bundle(args.project)
    tag = bento_tag(bundle.lock.name, bento_version(bundle))
    argv = serve_argv(sys.executable, tag, args.host, args.port)
    env = {**os.environ, **QUIET_ENV}
    if args.bentoml_home:
        env["BENTOML_HOME"] = str(Path(args.bentoml_home).resolve())
    info(f"serving bento {tag} on http://{args.host}:{args.port} "
         "(run `envbuild model package` first)")
    sys.stdout.flush()
    sys.stderr.flush()
    # `serve` runs until stopped: this process becomes bentoml (signals go straight to it).
    os.execve(argv[0], argv, env)
    return 0  # not reached


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    model = command(
        "model", "package, promote and roll back the locked MLflow model",
        "Work with the MLflow model the lock pins.\n\n"
        "examples:\n"
        "  envbuild model package                      # check, import and build the bento\n"
        "  envbuild model fetch                        # the checked files in model/\n"
        "  envbuild model promote churn 3 --alias production\n"
        "  envbuild model rollback churn --alias production\n"
        "  envbuild model history churn",
        lambda args: args.model_handler(args),
    )
    sub = model.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)

    def subcommand(name: str, help_text: str,
                   handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(model_handler=handler)
        p.add_argument("-C", "--project", type=Path, default=argparse.SUPPRESS, metavar="DIR",
                       help="the project directory (default: the current one)")
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks and full tool commands on errors")
        p.add_argument("--json", action="store_true", help="print a JSON result on stdout")
        return p

    package = subcommand(
        "package", "download models:/NAME/VERSION, check its digest against the lock, import it "
        "into the BentoML store and run `bentoml build`", cmd_package)
    package.add_argument("--bentoml-home", metavar="DIR",
                         help="the BentoML store (default: $BENTOML_HOME, else ~/bentoml)")
    fetch = subcommand(
        "fetch", "download the locked model version into model/ (checked against the lock), "
        "where the image and Nix builds take it from", cmd_fetch)
    fetch.add_argument("--dest", default="model", metavar="DIR",
                       help="the directory, relative to the project (default: model)")
    for name, text, handler in (
        ("promote", "point an alias at a version (remembers the previous one)", cmd_promote),
        ("rollback", "move an alias back to the version it pointed to before", cmd_rollback),
        ("history", "list the alias moves recorded in MLflow", cmd_history),
    ):
        p = subcommand(name, text, handler)
        p.add_argument("name", help="the registered model's name")
        if name == "promote":
            p.add_argument("version", help="the model version to point the alias at")
        p.add_argument("--alias", required=name != "history", default=None,
                       help="the alias (e.g. production)")
        p.add_argument("--tracking-uri", metavar="URI",
                       help="the MLflow tracking URI (default: the spec's [model].tracking_uri, "
                       "else sqlite:///mlflow.db)")

    serve = command(
        "serve", "serve the bento built from this lock on 127.0.0.1",
        "Run `bentoml serve` on the bento `envbuild model package` built from this lock.\n\n"
        "example:\n  envbuild serve --port 3000\n"
        "  curl -X POST http://127.0.0.1:3000/predict -H 'content-type: application/json' "
        "-d '{\"rows\": [...]}'",
        cmd_serve,
    )
    serve.add_argument("--host", default="127.0.0.1", help="the address (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=3000, help="the port (default: 3000)")
    serve.add_argument("--bentoml-home", metavar="DIR",
                       help="the BentoML store (default: $BENTOML_HOME, else ~/bentoml)")
