"""Benchmark: `envbuild model package` vs the plain BentoML sequence a user would type.

    .venv/bin/python bench/model/run.py            # about 3 minutes
    .venv/bin/python bench/model/run.py --runs 5

Set-up (not timed): a copy of examples/churn in a temp dir, its model trained and registered in
a sqlite MLflow store there (`train.py`), and `envbuild lock` run once.

Timed, each run with a fresh, empty BENTOML_HOME (whole commands, process start to exit):
- envbuild: `envbuild model package` (download models:/churn/N, digest check, import under the
  lock's tag, generate service.py/bentofile.yaml, `bentoml build` with the lock's hashed
  requirements);
- plain: `python -c "bentoml.mlflow.import_model('churn', 'models:/churn/N')"` then
  `bentoml build` of the same service.py with a bentofile listing the example's requirements
  (BentoML's defaults: it locks them itself with `uv pip compile` against the index);
- envbuild again on the filled store (the no-change case: model and bento reused).

Writes raw numbers to bench/out/model.json and replaces only the `## model` section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: shared helpers
from results import replace_section

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
EXAMPLE = REPO / "examples" / "churn"
BIN = Path(sys.executable).parent
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "BENTOML_DO_NOT_TRACK": "true", "DO_NOT_TRACK": "1",
         "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def log(message: str) -> None:
    sys.stderr.write(f"bench/model: {message}\n")


def env(**extra: str) -> dict[str, str]:
    out = {**os.environ, **QUIET, **extra}
    out.pop("MLFLOW_TRACKING_URI", None)
    return out


def run(argv: list[str], cwd: Path, **extra: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env(**extra), capture_output=True, text=True,
                          timeout=1800, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed


def set_up(work: Path) -> tuple[Path, str]:
    project = work / "churn"
    project.mkdir()
    for name in ("envbuild.toml", "requirements.in", "pylock.toml", "requirements.txt",
                 "envbuild.lock", "train.py"):
        shutil.copy(EXAMPLE / name, project / name)
    shutil.copytree(EXAMPLE / "data", project / "data")
    if (EXAMPLE / "app").is_dir():
        shutil.copytree(EXAMPLE / "app", project / "app")
    log("training and registering the example model (not timed)")
    run([sys.executable, "train.py"], project)
    log("envbuild lock (not timed)")
    run([str(BIN / "envbuild"), "lock"], project)
    import tomllib

    version = str(tomllib.loads((project / "envbuild.lock").read_text())["model"]["version"])
    return project, version


def plain_context(project: Path, work: Path) -> Path:
    """The build context a user would write: the same service, BentoML's default packaging."""
    from envbuild.generate.bento import render_service
    from envbuild.lock.loaded import load_bundle

    ctx = work / "plain-context"
    ctx.mkdir()
    service = render_service(load_bundle(project)).decode()
    start = service.index("MODEL_TAG = ")
    end = service.index("\n", start)
    (ctx / "service.py").write_text(service[:start] + 'MODEL_TAG = "churn:latest"' + service[end:])
    reqs = [line for line in (EXAMPLE / "requirements.in").read_text().splitlines()
            if line and not line.startswith("#") and not line.startswith("bentoml")]
    (ctx / "bentofile.yaml").write_text(
        'service: "service:Model"\ninclude:\n  - "service.py"\npython:\n  packages:\n'
        + "".join(f'    - "{r}"\n' for r in reqs))
    return ctx


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--no-results", action="store_true")
    parser.add_argument("--json", type=Path, default=BENCH / "out" / "model.json")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="envbuild-bench-model-"))
    try:
        project, version = set_up(work)
        tracking = f"sqlite:///{project / 'mlflow.db'}"
        ctx = plain_context(project, work)
        times: dict[str, list[float]] = {"envbuild": [], "plain": [], "plain_import": [],
                                         "plain_build": [], "envbuild_again": []}
        for i in range(args.runs):
            home = work / f"home-envbuild-{i}"
            log(f"run {i + 1}/{args.runs}: envbuild model package")
            times["envbuild"].append(run([str(BIN / "envbuild"), "model", "package",
                                          "--bentoml-home", str(home)], project))
            times["envbuild_again"].append(run([str(BIN / "envbuild"), "model", "package",
                                                "--bentoml-home", str(home)], project))
            plain_home = work / f"home-plain-{i}"
            log(f"run {i + 1}/{args.runs}: bentoml.mlflow.import_model + bentoml build")
            t_import = run([sys.executable, "-c",
                            ("import sys, mlflow, bentoml; mlflow.set_tracking_uri(sys.argv[1]); "
                            "mlflow.set_registry_uri(sys.argv[1]); "
                            "bentoml.mlflow.import_model('churn', sys.argv[2])"),
                            tracking, f"models:/churn/{version}"], ctx,
                           BENTOML_HOME=str(plain_home))
            t_build = run([str(BIN / "bentoml"), "build", str(ctx)], ctx,
                          BENTOML_HOME=str(plain_home))
            times["plain_import"].append(t_import)
            times["plain_build"].append(t_build)
            times["plain"].append(t_import + t_build)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")

    med = {k: statistics.median(v) for k, v in times.items()}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True, check=False).stdout.strip()
    raw = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit,
           "runs": args.runs, "times": times, "median": med}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(raw, indent=2) + "\n")

    def cell(key: str) -> str:
        v = times[key]
        return f"{med[key]:.2f} ({min(v):.2f}-{max(v):.2f})"

    section = "\n".join([
        "## model",
        "",
        ("`envbuild model package` vs the plain sequence a user would type "
        "(`bentoml.mlflow.import_model('churn', 'models:/churn/N')` + `bentoml build` with "
        "BentoML's default packaging), for the churn example's scikit-learn model in a sqlite "
        "MLflow store. Written by `.venv/bin/python bench/model/run.py`; raw numbers in "
        "bench/out/model.json."),
        "",
        (f"- date: {raw['date']}; envbuild at {commit}; {os.cpu_count()} CPUs; Python "
        f"{platform.python_version()}; runs: {args.runs} (median, min-max)"),
        ("- every run starts from an empty BENTOML_HOME; the store and bento of the run before "
        "are not reused, except in the last row"),
        "",
        "| step | seconds |",
        "|---|---:|",
        (f"| envbuild model package (download, digest check, import, generate, bentoml build) | "
        f"{cell('envbuild')} |"),
        f"| plain: import_model | {cell('plain_import')} |",
        (f"| plain: bentoml build (BentoML locks the requirements itself: uv pip compile) | "
        f"{cell('plain_build')} |"),
        f"| plain: both | {cell('plain')} |",
        (f"| envbuild model package again, same store (model and bento reused) | "
        f"{cell('envbuild_again')} |"),
        "",
        (f"Ratio envbuild / plain: {med['envbuild'] / med['plain']:.2f}. What envbuild adds for "
        "it: the model's files are checked against the lock's digest before import, the model "
        "and bento versions come from the lock (the plain sequence gets random ones and a new "
        "bento each time), and the bento's requirements are the lock's, with hashes, instead of "
        "a fresh unhashed resolve against the live index."),
        "",
    ])
    if not args.no_results:
        text = (args.results.read_text() if args.results.exists()
                else "# Benchmark results\n\nProduced by the scripts under bench/.\n")
        new = replace_section(text, "## model", section)
        tmp = args.results.with_suffix(".md.tmp")
        tmp.write_text(new)
        os.replace(tmp, args.results)
        log(f"wrote the '## model' section of {args.results}")
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
