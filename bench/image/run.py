"""Image benchmark: envbuild's image vs the Dockerfile `bentoml build` writes, same builder and base.

Run from the repository root with the project's venv (as root: buildah needs it):

    .venv/bin/python bench/image/run.py            # about 10 minutes the first time

Both images serve the churn example's service code (examples/churn/app) with the example's
requirements (examples/churn/requirements.in), built with the same builder (buildah, the
machine's storage driver, `--isolation chroot --format oci --layers --timestamp 0`) from the
same base image (the debootstrap Python base in the loopback registry, by digest).

- envbuild: `envbuild -C <copy of examples/churn> build --no-record` (generate + build).
- BentoML: a separate venv with bentoml==1.4.40 and mlflow==3.17.2 (pinned together, as
  DESIGN.md says), a bento of the same code (a `@bentoml.service` calling app.serve.predict),
  `bentoml build`, then buildah on the bento's generated env/docker/Dockerfile. The model work
  has not landed, so the bento holds no model: neither image has one. The generated Dockerfile
  is used as written except for what this machine forces (each change is listed in the
  results): FROM the same base by digest instead of python:3.11-slim (no image can be pulled);
  python3-pip added to its apt-get line and PIP_BREAK_SYSTEM_PACKAGES=1 (the Debian base has no
  pip, which python:3.11-slim has); and the host's CA bundle mounted read-only for its network
  steps (SSL_CERT_FILE/PIP_CERT), as DESIGN.md "Network inside a build" describes.

Measured, each after a warm-up build so both builders' layer caches hold every step:
- image size: the sum of the image's uncompressed layers (`buildah inspect` sizes);
- code-only rebuild: a one-line change in app/serve.py, then the whole user command timed:
  `envbuild build` vs `bentoml build` + `buildah bud` (median of --runs, alternating).

Writes bench/out/image.json and replaces the `## image` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: shared helpers
from results import replace_section

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "churn"
RESULTS = REPO / "bench" / "RESULTS.md"
OUT = REPO / "bench" / "out"
BENTO_VENV = Path(os.environ.get("ENVBUILD_BENCH_BENTO_VENV", "/var/cache/envbuild/bento-venv"))
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
QUIET = {"BENTOML_DO_NOT_TRACK": "true", "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}

SERVICE = '''\
import bentoml

from app.serve import predict


@bentoml.service
class Churn:
    @bentoml.api
    def predict(self, tenure: float, monthly: float) -> dict:
        return predict(tenure, monthly)
'''
BENTOFILE = '''\
service: "service:Churn"
include: ["service.py", "app/*.py"]
python:
  requirements_txt: "requirements.txt"
'''


def log(message: str) -> None:
    print(f"bench/image: {message}", file=sys.stderr, flush=True)


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, env={**os.environ, **QUIET, **(env or {})},
                          capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
                         f"{proc.stdout[-2000:]}")
    return proc


def timed(argv: list[str], **kw: object) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = run(argv, **kw)  # type: ignore[arg-type]
    return time.perf_counter() - start, proc


def ensure_bento_venv() -> Path:
    bentoml = BENTO_VENV / "bin" / "bentoml"
    if bentoml.exists():
        return bentoml
    uv = str(Path(sys.executable).parent / "uv")
    log(f"creating {BENTO_VENV} with bentoml==1.4.40 and mlflow==3.17.2")
    run([uv, "venv", "-q", str(BENTO_VENV), "--python", "/usr/bin/python3"])
    run([uv, "pip", "install", "-q", "--python", str(BENTO_VENV / "bin" / "python"),
         "bentoml==1.4.40", "mlflow==3.17.2", "uv", "pip"])
    return bentoml


def image_size(ref: str) -> int:
    """Bytes of the image's uncompressed layers, base included (podman shares buildah's storage)."""
    return int(run(["podman", "image", "inspect", "--format", "{{.Size}}", ref]).stdout.strip())


def edit_code(app: Path, n: int) -> None:
    serve = app / "serve.py"
    lines = serve.read_text().splitlines(keepends=True)
    lines = [line for line in lines if not line.startswith("BENCH_EDIT = ")]
    serve.write_text("".join(lines) + f"BENCH_EDIT = {n}\n")


class Envbuild:
    name = "envbuild"

    def __init__(self, work: Path) -> None:
        self.project = work / "envbuild" / "churn"
        self.project.mkdir(parents=True)
        for name in ("envbuild.toml", "envbuild.lock", "pylock.toml", "requirements.in",
                     "requirements.txt"):
            shutil.copy2(EXAMPLE / name, self.project / name)
        shutil.copytree(EXAMPLE / "app", self.project / "app",
                        ignore=shutil.ignore_patterns("__pycache__"))
        self.tag = ""
        self.dockerfile = ""

    def build(self) -> float:
        seconds, proc = timed([sys.executable, "-m", "envbuild.cli.main", "-C", str(self.project),
                               "build", "--no-record", "--json"])
        self.tag = json.loads(proc.stdout)["tag"]
        self.dockerfile = (self.project / ".envbuild" / "bundle" / "Dockerfile").read_text()
        return seconds

    def edit(self, n: int) -> None:
        edit_code(self.project / "app", n)


class Bento:
    name = "bentoml"

    def __init__(self, work: Path, bentoml: Path, base: str) -> None:
        self.src = work / "bento" / "src"
        self.home = work / "bento" / "home"
        self.src.mkdir(parents=True)
        shutil.copytree(EXAMPLE / "app", self.src / "app",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (self.src / "service.py").write_text(SERVICE)
        (self.src / "bentofile.yaml").write_text(BENTOFILE)
        reqs = [line for line in (EXAMPLE / "requirements.in").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
        (self.src / "requirements.txt").write_text("\n".join(reqs) + "\n")
        self.bentoml = bentoml
        self.base = base
        self.version = 0
        self.tag = "localhost/bench-bento:latest"
        self.changes: list[str] = []
        self.bentoml_build_s: list[float] = []  # the `bentoml build` part of each build
        self.dockerfile = ""

    def patch(self, dockerfile: str) -> str:
        """Only what this machine forces; each change is reported."""
        out = dockerfile.replace("FROM python:3.11-slim AS base-container",
                                 f"FROM {self.base} AS base-container")
        out = out.replace("ca-certificates gnupg2 bash build-essential git",
                          "ca-certificates gnupg2 bash build-essential git python3-pip")
        out = out.replace("ENV PYTHONUNBUFFERED=1\n",
                          "ENV PYTHONUNBUFFERED=1\n\nENV PIP_BREAK_SYSTEM_PACKAGES=1 "
                          "SSL_CERT_FILE=/run/host-ca.crt PIP_CERT=/run/host-ca.crt\n", 1)
        self.changes = [
            "`FROM python:3.11-slim` -> `FROM <the same base, by digest>` (nothing can be pulled)",
            ("`python3-pip` added to its `apt-get install` line and `PIP_BREAK_SYSTEM_PACKAGES=1` "
            "(the Debian base has no pip; python:3.11-slim has)"),
            ("the host CA bundle mounted read-only at /run/host-ca.crt with `SSL_CERT_FILE` / "
            "`PIP_CERT` pointing at it (network steps inside the build)"),
        ]
        return out

    def build(self) -> float:
        self.version += 1
        start = time.perf_counter()
        run([str(self.bentoml), "build", "--version", f"v{self.version}"], cwd=self.src,
            env={"BENTOML_HOME": str(self.home)})
        self.bentoml_build_s.append(time.perf_counter() - start)
        bento = self.home / "bentos" / "churn" / f"v{self.version}"
        dockerfile = bento / "env" / "docker" / "Dockerfile"
        self.dockerfile = dockerfile.read_text()
        dockerfile.write_text(self.patch(self.dockerfile))
        run(["buildah", "bud", "--isolation", "chroot", "--format", "oci", "--layers=true",
             "--timestamp", "0", "--tls-verify=false", "--volume", f"{HOST_CA}:/run/host-ca.crt:ro",
             "-t", self.tag, "--file", str(dockerfile), str(bento)])
        return time.perf_counter() - start

    def edit(self, n: int) -> None:
        edit_code(self.src / "app", n)


def base_image() -> str:
    lock = (EXAMPLE / "envbuild.lock").read_text()
    for line in lock.splitlines():
        if line.startswith("base = "):
            return json.loads(line.split("=", 1)[1].strip())
    raise SystemExit("examples/churn/envbuild.lock pins no base image")


def render(data: dict) -> str:
    e, b = data["envbuild"], data["bentoml"]
    size_ratio = b["size_bytes"] / e["size_bytes"]
    rebuild_ratio = b["rebuild_median_s"] / e["rebuild_median_s"]
    mib = 1024 * 1024
    lines = [
        "## image",
        "",
        ("envbuild's image vs the Dockerfile `bentoml build` (1.4.40) writes, for the churn example's "
        "service code and requirements, both built with buildah (`--isolation chroot --format oci "
        "--layers --timestamp 0`, storage driver: the machine's default) from the same debootstrap "
        "base image by digest. Written by `.venv/bin/python bench/image/run.py`; raw numbers in "
        "bench/out/image.json."),
        "",
        f"- date: {data['date']}",
        f"- machine: {data['machine']}",
        ("- **no model in either image**: the model work has not landed, so the bento is the same "
        "service code (a `@bentoml.service` calling `app.serve.predict`) without a model"),
        "- changes to BentoML's generated Dockerfile that this machine forces:",
        *[f"  - {c}" for c in b["changes"]],
        (f"- code-only rebuild: a one-line change in app/serve.py, then the whole user command, "
        f"each after a warm-up build (every layer cached); median of {data['runs']} runs, "
        "alternating: `envbuild build` (generate + buildah) vs `bentoml build` + `buildah bud`"),
        "",
        "| | envbuild | BentoML's Dockerfile | ratio (BentoML / envbuild) | target | met |",
        "|---|---:|---:|---:|---|---|",
        (f"| image size (uncompressed layers) | {e['size_bytes'] / mib:.0f} MiB | "
        f"{b['size_bytes'] / mib:.0f} MiB | {size_ratio:.2f}x | smaller | "
        f"**{'yes' if size_ratio > 1 else 'NO'}** |"),
        (f"| code-only rebuild, whole command | {e['rebuild_median_s']:.1f} s "
        f"({min(e['rebuild_s']):.1f}-{max(e['rebuild_s']):.1f}) | {b['rebuild_median_s']:.1f} s "
        f"({min(b['rebuild_s']):.1f}-{max(b['rebuild_s']):.1f}) | {rebuild_ratio:.1f}x | >= 5x | "
        f"**{'yes' if rebuild_ratio >= 5 else 'NO'}** |"),
        (f"| warm-up build of this run (not a cold build: the layer caches may hold every "
         f"step from earlier runs) | {e['first_s']:.1f} s | {b['first_s']:.1f} s | | | |"),
        "",
        (f"Of BentoML's code-only rebuild, `bentoml build` alone took a median "
         f"{b['bentoml_build_median_s']:.1f} s and `buildah bud` the rest; envbuild's whole "
         "command is `envbuild build` (generate the bundle, check the base, build, tag)."),
        "",
        (f"Layers: envbuild {e['layers']}, BentoML {b['layers']}. BentoML's image carries "
        "build-essential and git (its apt-get line), uv, and a venv resolved against the live "
        "index at build time (no hashes); envbuild's carries the locked wheels only."),
        "",
    ]
    return "\n".join(lines)


def layer_count(ref: str) -> int:
    data = json.loads(run(["buildah", "inspect", "--type", "image", ref]).stdout)
    return len(data["OCIv1"]["rootfs"]["diff_ids"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="code-only rebuilds per tool")
    args = parser.parse_args()
    bentoml = ensure_bento_venv()
    base = base_image()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-image-") as tmp:
        work = Path(tmp)
        tools = [Envbuild(work), Bento(work, bentoml, base)]
        first = {}
        for tool in tools:
            log(f"{tool.name}: first build (fills the layer cache)")
            first[tool.name] = tool.build()
        rebuilds: dict[str, list[float]] = {t.name: [] for t in tools}
        for n in range(1, args.runs + 1):
            for tool in tools:
                tool.edit(n)
                seconds = tool.build()
                rebuilds[tool.name].append(seconds)
                log(f"{tool.name}: code-only rebuild {n}: {seconds:.1f} s")
        data: dict = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} CPUs, {os.uname().sysname} {os.uname().release}, "
                       f"{run(['buildah', '--version']).stdout.strip()}",
            "runs": args.runs,
        }
        for tool in tools:
            data[tool.name] = {
                "tag": tool.tag,
                "size_bytes": image_size(tool.tag),
                "layers": layer_count(tool.tag),
                "first_s": first[tool.name],
                "rebuild_s": rebuilds[tool.name],
                "rebuild_median_s": statistics.median(rebuilds[tool.name]),
                "dockerfile": tool.dockerfile,
            }
        data["bentoml"]["changes"] = tools[1].changes  # type: ignore[attr-defined]
        bento_parts = tools[1].bentoml_build_s[1:]  # type: ignore[attr-defined]
        data["bentoml"]["bentoml_build_median_s"] = statistics.median(bento_parts)
    (OUT / "image.json").write_text(json.dumps(data, indent=2) + "\n")
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = render(data)
    tmp_path = RESULTS.with_suffix(".md.tmp")
    tmp_path.write_text(replace_section(text, "## image", section))
    os.replace(tmp_path, RESULTS)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
