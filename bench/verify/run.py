"""bench/verify: `envbuild verify` with nothing changed vs `dvc status` on the same data.

A copy of examples/churn (its lock, code, data and MLflow store as the README's first command
left them) gets a data directory of --files small files next to its own data file. envbuild pins
both with `envbuild data add`, DVC with `dvc add` in the same copy; then, with nothing changed,
each tool's status check runs --runs times, side by side:

  envbuild verify        the whole CI gate: lock, generated files, data (stat cache), model
  envbuild data status   the data part alone
  envbuild lock --check  the lock part alone
  dvc status             what a DVC user runs

Writes raw numbers to bench/out/verify.json and the `## verify` section of bench/RESULTS.md.
Run: .venv/bin/python bench/verify/run.py [--files 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: shared helpers
from results import write_section

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "churn"
BIN = Path(sys.executable).parent
COPY = ("app", "data", "envbuild.toml", "envbuild.lock", "pylock.toml", "requirements.in",
        "requirements.txt", "mlflow.db", "mlruns", ".envbuild")


def run(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000, help="small data files to add")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-results", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    if not (EXAMPLE / "mlflow.db").exists() or not (EXAMPLE / ".envbuild" / "bundle").is_dir():
        raise SystemExit("run `bash scripts/run-example.sh` first: it trains, locks and generates "
                         "the example this benchmark copies")
    envbuild, dvc = str(BIN / "envbuild"), str(BIN / "dvc")
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-verify-") as tmp:
        project = Path(tmp) / "churn"
        project.mkdir()
        for name in COPY:
            source = EXAMPLE / name
            if source.is_dir():
                shutil.copytree(source, project / name, symlinks=True)
            elif source.exists():
                shutil.copy2(source, project / name)
        many = project / "data" / "many"
        for i in range(args.files):
            sub = many / f"{i % 50:02d}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"{i:05d}.bin").write_bytes(os.urandom(4096 + (i * 37) % 8192))
        old = time.time() - 3600  # not "racily clean": the stat cache may answer
        for path in many.rglob("*.bin"):
            os.utime(path, (old, old))
        env = {**os.environ, "ENVBUILD_CACHE": str(Path(tmp) / "cache")}
        os.environ.update(env)
        run([envbuild, "data", "add", "data/churn.csv", "data/many"], project)
        run([envbuild, "generate"], project)
        run([envbuild, "data", "status"], project)  # first status fills the stat cache
        run(["git", "init", "-q"], project)
        run([dvc, "init", "-q"], project)
        run([dvc, "add", "-q", "data/many"], project)
        commands = {
            "envbuild verify": [envbuild, "verify"],
            "envbuild data status": [envbuild, "data", "status"],
            "envbuild lock --check": [envbuild, "lock", "--check"],
            "dvc status": [dvc, "status"],
            "python -c pass": [sys.executable, "-c", "pass"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so load hits every tool alike
            for name, argv in commands.items():
                times[name].append(run(argv, project))
    medians = {name: statistics.median(t) for name, t in times.items()}
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "verify.json").write_text(json.dumps({"files": args.files, "runs": args.runs,
                                                 "times": times, "medians": medians}, indent=2))
    load = os.getloadavg()[0]
    lines = [
        "## verify", "",
        ("`envbuild verify` with nothing changed vs `dvc status` on the same data: a copy of "
        f"examples/churn plus {args.files} small files (4 to 12 KiB) in data/many, pinned by both "
        "tools. Written by `.venv/bin/python bench/verify/run.py`; raw numbers in "
        "bench/out/verify.json."), "",
        (f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs; Python "
        f"{platform.python_version()}; load average at the end {load:.1f}"),
        f"- median of {args.runs} interleaved runs, whole commands (process start to exit)", "",
        "| command | median s | dvc status / command |", "|---|---:|---:|",
    ]
    for name, median in medians.items():
        lines.append(f"| {name} | {median:.3f} | {medians['dvc status'] / median:.2f}x |")
    lines += ["",
              ("`envbuild verify` runs four checks: the lock (the example's model is named by "
              "alias, so it asks the MLflow store whether the alias moved, reading the sqlite "
              "store directly rather than importing mlflow), the generated image bundle "
              "(re-rendered and compared), the data (the stat cache answers: no file is read) "
              "and the model. `dvc status` checks the data alone. A ratio above 1 means "
              "envbuild is faster."), ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_results:
        write_section("## verify", text)


if __name__ == "__main__":
    main()
