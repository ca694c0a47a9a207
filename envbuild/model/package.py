"""`envbuild model package`: the locked model, checked, as a BentoML model and a built bento.

Order matters for "nothing enters a build unchecked": download `models:/NAME/VERSION` (never the
alias), check the digest against the lock, and only then touch the BentoML store. Re-running
with the same lock reuses the model and the bento already in the store.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.errors import EnvbuildError, IntegrityError, LockError, NetworkError, ToolError
from envbuild.tools import Runner

Status = Callable[[str], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class PackageOutcome:
    model_tag: str
    bento_tag: str
    imported: bool  # False: the store already held this exact model
    built: bool  # False: the store already held this bento


def import_argv(python: str, project: Path, pin_json: str, tag: str, bento: str) -> list[str]:
    return [python, "-m", "envbuild.model.bento_store", str(project), pin_json, tag, bento]


def bentoml_argv(python: str, *args: str) -> list[str]:
    return [python, "-m", "bentoml", *args]


def build_argv(python: str, context: Path, version: str) -> list[str]:
    # Absolute paths: BentoML resolves some relative ones against the filesystem root.
    return bentoml_argv(python, "build", "--bentofile", str(context / "bentofile.yaml"),
                        "--version", version, "--output", "tag", str(context))


def serve_argv(python: str, bento_tag: str, host: str, port: int) -> list[str]:
    return bentoml_argv(python, "serve", bento_tag, "--host", host, "--port", str(port))


def _env(bentoml_home: Path | None) -> dict[str, str]:
    return {"BENTOML_HOME": str(bentoml_home.resolve())} if bentoml_home else {}


def package_model(project: Path, *, runner: Runner | None = None,
                  bentoml_home: Path | None = None,
                  status: Status = lambda _: None) -> PackageOutcome:
    from envbuild.files import write_all_atomic
    from envbuild.generate.bento import bento_version, model_pin, render_build_context
    from envbuild.lock.loaded import load_bundle
    from envbuild.model.pin import PYFUNC_FLAVOR, bento_model_tag, bento_tag

    runner = runner or Runner()
    bundle = load_bundle(project)
    pin = model_pin(bundle)
    if PYFUNC_FLAVOR not in pin.flavors:
        raise EnvbuildError(
            f"model {pin.pinned_uri} has the flavors {', '.join(pin.flavors)}: BentoML loads "
            f"MLflow models through {PYFUNC_FLAVOR!r}, which it lacks",
            hint="log the model with a flavor that provides python_function "
            "(mlflow.sklearn, mlflow.pyfunc, ...)",
        )
    context = render_build_context(bundle)  # signature or lock problems: before any download
    model_tag = bento_model_tag(pin)
    tag = bento_tag(bundle.lock.name, bento_version(bundle))
    env = _env(bentoml_home)
    with tempfile.TemporaryDirectory(prefix="envbuild-package-") as tmp:
        status(f"downloading {pin.pinned_uri} from {pin.tracking_uri}, checking its digest, "
               f"importing it into the BentoML store as {model_tag}")
        pin_json = json.dumps(pin.to_dict(), sort_keys=True)
        result = runner.run(import_argv(sys.executable, project.resolve(), pin_json, model_tag,
                                        tag),
                            env=env, check=False, timeout=600, what="the BentoML model import")
        answer: dict[str, Any] = _json_line(result.stdout)
        if result.returncode == 5:
            kind = {"IntegrityError": IntegrityError, "LockError": LockError,
                    "NetworkError": NetworkError}.get(str(answer.get("kind")), EnvbuildError)
            raise kind(str(answer.get("message")), hint=str(answer.get("hint", "")))
        if result.returncode == 3:
            raise IntegrityError(
                f"the BentoML store already holds a different model under {model_tag} "
                f"({answer.get('path', '?')}: digest {answer.get('digest', '?')}, "
                f"the lock has {pin.digest})",
                hint="nothing was overwritten; remove it (`bentoml models delete "
                f"{model_tag}`) or use another BENTOML_HOME",
            )
        if result.returncode == 4:
            raise EnvbuildError(f"BentoML cannot load {pin.pinned_uri}: {answer.get('message')}",
                                hint="log the model with a python_function flavor")
        if result.returncode != 0:
            raise ToolError("the BentoML model import failed", argv=result.argv,
                            returncode=result.returncode, stderr=result.stderr,
                            hint="run with -v to see the full command and its output")
        imported = answer.get("status") == "imported"

        if answer.get("bento") is True:
            status(f"bento {tag} is already built")
            return PackageOutcome(model_tag=model_tag, bento_tag=tag, imported=imported,
                                  built=False)
        build_dir = Path(tmp) / "build"
        build_dir.mkdir()
        write_all_atomic({build_dir / name: data for name, data in sorted(context.items())})
        status(f"bentoml build --version {bento_version(bundle)}")
        runner.run(build_argv(sys.executable, build_dir, bento_version(bundle)), env=env,
                   cwd=build_dir, timeout=900, what="bentoml build")
    return PackageOutcome(model_tag=model_tag, bento_tag=tag, imported=imported, built=True)


def _json_line(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return {}


MODEL_DIR = "model"  # where the image and Nix generators take the model's files from


def fetch_model(project: Path, *, dest: str = MODEL_DIR,
                status: Status = lambda _: None) -> tuple[Path, bool]:
    """Put the locked model's files, checked, in `project/dest` (the build context's model/).

    Returns (the directory, whether it changed). A directory that already holds exactly the
    locked files is left alone; anything else is replaced as a whole, by a rename, only after
    the new files passed the digest check. `registered_model_meta` is left out: it is not part
    of the model's digest.
    """
    import shutil

    from envbuild.generate.bento import model_pin
    from envbuild.lock.loaded import load_bundle
    from envbuild.model.files import check_model_files
    from envbuild.model.pin import IGNORED_FILES
    from envbuild.model.registry import download

    pin = model_pin(load_bundle(project))
    target = project / dest
    if target.is_dir():
        try:
            check_model_files(target, pin)
            if not any((target / name).exists() for name in IGNORED_FILES):
                return target, False
        except IntegrityError:
            pass  # replaced below
    with tempfile.TemporaryDirectory(prefix=".envbuild-model-", dir=project) as tmp:
        status(f"downloading {pin.pinned_uri} from {pin.tracking_uri}")
        model_dir = download(project, pin.tracking_uri, pin.name, pin.version, Path(tmp) / "dl")
        for name in IGNORED_FILES:
            (model_dir / name).unlink(missing_ok=True)
        check_model_files(model_dir, pin)  # IntegrityError: `dest` stays as it was
        old = Path(tmp) / "old"
        if target.exists() or target.is_symlink():
            target.rename(old)
        model_dir.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    return target, True
