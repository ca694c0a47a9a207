"""Image benchmark: envbuild's image vs the Dockerfile `bentoml build` writes, same builder and base.

Run from the repository root with the project's venv (as root: buildah needs it):

    .venv/bin/python bench/image/run.py            # about 10 minutes the first time
    .venv/bin/python bench/image/run.py --render   # rewrite the section from image.json only

Both images serve the churn example's service code (examples/churn/app) and the same MLflow model
version, with the example's requirements (examples/churn/requirements.in), built with the same
builder (buildah, the machine's storage driver, `--isolation chroot --format oci --layers
--timestamp 0`) from the same base image (the debootstrap Python base in the loopback registry,
by digest).

Set-up (not timed): a copy of examples/churn (its locked files, app/, data/ and train.py) in a
temp dir; `python train.py` there trains the model and registers it as `churn` (alias
`production`) in the copy's own sqlite:///mlflow.db; `envbuild lock` re-pins [model] to that
store (as tests/integration/test_image_build.py does).

- envbuild: `envbuild -C <copy> build --no-record` (generate, which copies the locked model's
  digest-checked files into the bundle's model/, then build: the model lands in /opt/model).
- BentoML: a separate venv with bentoml==1.4.40 and mlflow==3.17.2 (pinned together, as
  DESIGN.md says). The plain user flow: `bentoml.mlflow.import_model("churn",
  "models:/churn/<the locked version>")` with MLFLOW_TRACKING_URI at the copy's store (not
  timed), a `@bentoml.service` whose `model_ref = bentoml.models.BentoModel(<that tag>)` lists the
  model in the service's models, loaded with `bentoml.mlflow.load_model(...)` (its raw
  scikit-learn pipeline answers predict_proba through the same app.serve.predict), then
  `bentoml build`. BentoML 1.4 leaves the model out of the stored bento (bento.yaml names it):
  `bentoml containerize` builds from a context that BentoML's construct_containerfile makes, the
  bento plus models/ from the model store, with the same Dockerfile as the bento's
  env/docker/Dockerfile. The bench calls that function (in the bento venv) and runs buildah on
  its context and Dockerfile with the flags above, instead of containerize's own buildah call.
  The generated Dockerfile is used as written except for
  what this machine forces (each change is listed in the results): FROM the same base by digest
  instead of python:3.11-slim (no image can be pulled); python3-pip added to its apt-get line and
  PIP_BREAK_SYSTEM_PACKAGES=1 (the Debian base has no pip, which python:3.11-slim has); and the
  host's CA bundle mounted read-only for its network steps (SSL_CERT_FILE/PIP_CERT), as DESIGN.md
  "Network inside a build" describes.

Checked after the last build of each (`buildah from` + `buildah run` in the image, as its user):
every file of the lock's [model.files] is in the image's model directory with its locked sha256
(extra files are listed), and the image's own environment loads the model and answers
predict_proba for one row.

Measured, each after a warm-up build so both builders' layer caches hold every step:
- image size: the sum of the image's uncompressed layers (`podman image inspect` size);
- code-only rebuild: a one-line change in app/serve.py, then the whole user command timed:
  `envbuild build` vs `bentoml build` + containerize's context + `buildah bud` (median of
  --runs, alternating; the model import is not repeated: a code change does not need it).

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
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: shared helpers
from results import replace_section

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "churn"
RESULTS = REPO / "bench" / "RESULTS.md"
OUT = REPO / "bench" / "out"
BENTO_VENV = Path(os.environ.get("ENVBUILD_BENCH_BENTO_VENV", "/var/cache/envbuild/bento-venv"))
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
QUIET = {"BENTOML_DO_NOT_TRACK": "true", "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
         "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
ROW = {"tenure": 2, "monthly_charges": 99.0, "contract": "month"}  # a newcomer who churns

SERVICE = """\
import bentoml

from app.serve import parse_input, predict

MODEL_TAG = {tag!r}  # bentoml.mlflow.import_model("churn", "models:/churn/{version}")


@bentoml.service
class Churn:
    model_ref = bentoml.models.BentoModel(MODEL_TAG)  # `bentoml build` puts it in the bento

    def __init__(self) -> None:
        # MLflow's pyfunc wrapper; its raw model is the scikit-learn pipeline (predict_proba).
        self.model = bentoml.mlflow.load_model(self.model_ref).get_raw_model()

    @bentoml.api
    def predict(self, tenure: int, monthly_charges: float, contract: str) -> dict:
        row = {{"tenure": tenure, "monthly_charges": monthly_charges, "contract": contract}}
        return predict(self.model, parse_input(row))
"""
BENTOFILE = """\
service: "service:Churn"
include: ["service.py", "app/*.py"]
python:
  requirements_txt: "requirements.txt"
"""
IMPORT = """\
import bentoml
model = bentoml.mlflow.import_model("churn", __import__("sys").argv[1])
print("BENCH_TAG", model.tag)
"""
# `bentoml build` leaves the model out of the bento (bento.yaml names it; the bento has no
# models/): `bentoml containerize` makes the build context with BentoML's construct_containerfile,
# a copy of the bento plus models/ resolved from the model store, and regenerates the same
# Dockerfile (less its header comment). This does that, then applies this machine's changes and
# runs buildah with the bench's flags instead of containerize's.
CONTAINERIZE = """\
import json, pathlib, subprocess, sys
import bentoml
from bentoml._internal.container import construct_containerfile, enable_buildkit, get_backend

tag, edits, argv = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
buildkit = enable_buildkit(builder=get_backend("buildah"))
with construct_containerfile(bentoml.get(tag), enable_buildkit=buildkit) as (context, dockerfile):
    text = pathlib.Path(dockerfile).read_text()
    print("BENCH_DOCKERFILE", json.dumps(text), flush=True)
    for old, new in edits:
        if old not in text:
            sys.exit(f"BentoML's generated Dockerfile changed: no {old!r} in it")
        text = text.replace(old, new, 1)
    pathlib.Path(dockerfile).write_text(text)
    models = pathlib.Path(context, "models")
    print("BENCH_MODELS", json.dumps(sorted(p.relative_to(context).as_posix()
                                            for p in models.rglob("*") if p.is_file())), flush=True)
    subprocess.run([*argv, "--file", dockerfile, context], check=True, stdout=sys.stderr)
"""
# Run inside each image as its user: hash the model directory's files, load the model the way
# the image's service does, and answer one row with app.serve.predict (predict_proba).
CHECK = """\
import hashlib, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
files = {{p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
         for p in sorted(root.rglob("*")) if p.is_file()}}
size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
{load}
from app.serve import predict
print("BENCH_CHECK", json.dumps({{"dir": str(root), "files": files, "bytes": size,
                                 "prediction": predict(model, json.loads(sys.argv[2]))}}))
"""


def log(message: str) -> None:
    print(f"bench/image: {message}", file=sys.stderr, flush=True)


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **QUIET, **(env or {})}
    if "MLFLOW_TRACKING_URI" not in (env or {}):
        full.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(argv, cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
                         f"{proc.stdout[-2000:]}")
    return proc


def timed(argv: list[str], **kw: object) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = run(argv, **kw)  # type: ignore[arg-type]
    return time.perf_counter() - start, proc


def marked(stdout: str, mark: str) -> str:
    for line in stdout.splitlines():
        if line.startswith(mark + " "):
            return line[len(mark) + 1:]
    raise SystemExit(f"no {mark} line in:\n{stdout[-2000:]}")


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


def check_model_in(ref: str, model_dir: str, load: str, workdir: str,
                   env: dict[str, str] | None = None) -> dict:
    """Run CHECK in a working container of the image (buildah run, chroot isolation)."""
    ctr = run(["buildah", "from", "--pull-never", ref]).stdout.strip().splitlines()[-1]
    try:
        argv = ["buildah", "run", "--isolation", "chroot", "--workingdir", workdir]
        for key, value in {**QUIET, **(env or {})}.items():
            argv += ["--env", f"{key}={value}"]
        proc = run([*argv, ctr, "--", "python", "-c", CHECK.format(load=load), model_dir,
                    json.dumps(ROW)])
        return json.loads(marked(proc.stdout, "BENCH_CHECK"))
    finally:
        run(["buildah", "rm", ctr])


def edit_code(app: Path, n: int) -> None:
    serve = app / "serve.py"
    lines = serve.read_text().splitlines(keepends=True)
    lines = [line for line in lines if not line.startswith("BENCH_EDIT = ")]
    serve.write_text("".join(lines) + f"BENCH_EDIT = {n}\n")


def set_up(work: Path) -> tuple[Path, dict]:
    """A copy of the example with its model trained, registered and locked (not timed)."""
    project = work / "envbuild" / "churn"
    project.mkdir(parents=True)
    for name in ("envbuild.toml", "envbuild.lock", "pylock.toml", "requirements.in",
                 "requirements.txt", "train.py"):
        shutil.copy2(EXAMPLE / name, project / name)
    for name in ("app", "data"):
        shutil.copytree(EXAMPLE / name, project / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    log("training and registering the example model in the copy's sqlite store (not timed)")
    run([sys.executable, str(project / "train.py")], cwd=project)
    log("envbuild lock: re-pins [model] to the copy's store (not timed)")
    run([sys.executable, "-m", "envbuild.cli.main", "-C", str(project), "lock"])
    model = tomllib.loads((project / "envbuild.lock").read_text())["model"]
    return project, model


class Envbuild:
    name = "envbuild"

    def __init__(self, project: Path) -> None:
        self.project = project
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

    def check_model(self) -> dict:
        return check_model_in(self.tag, "/opt/model",
                              "from app.serve import load_model\nmodel = load_model()", "/srv")


class Bento:
    name = "bentoml"

    def __init__(self, work: Path, bentoml: Path, base: str, project: Path, version: str) -> None:
        self.src = work / "bento" / "src"
        self.home = work / "bento" / "home"
        self.src.mkdir(parents=True)
        self.bentoml = bentoml
        self.python = bentoml.parent / "python"
        log(f"bentoml.mlflow.import_model('churn', 'models:/churn/{version}') (not timed)")
        proc = run([str(self.python), "-c", IMPORT, f"models:/churn/{version}"], cwd=self.src,
                   env={"BENTOML_HOME": str(self.home),
                        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"})
        self.model_tag = marked(proc.stdout, "BENCH_TAG")
        shutil.copytree(EXAMPLE / "app", self.src / "app",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (self.src / "service.py").write_text(SERVICE.format(tag=self.model_tag, version=version))
        (self.src / "bentofile.yaml").write_text(BENTOFILE)
        reqs = [line for line in (EXAMPLE / "requirements.in").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
        (self.src / "requirements.txt").write_text("\n".join(reqs) + "\n")
        self.base = base
        self.version = 0
        self.tag = "localhost/bench-bento:latest"
        self.changes: list[str] = []
        self.bentoml_build_s: list[float] = []  # the `bentoml build` part of each build
        self.dockerfile = ""
        self.context_models: list[str] = []  # files under models/ in the build context
        self.bento_has_models = False  # whether the stored bento itself has a models/

    def edits(self) -> list[tuple[str, str]]:
        """Only what this machine forces; each change is reported (and must apply)."""
        self.changes = [
            "`FROM python:3.11-slim` -> `FROM <the same base, by digest>` (nothing can be pulled)",
            ("`python3-pip` added to its `apt-get install` line and `PIP_BREAK_SYSTEM_PACKAGES=1` "
            "(the Debian base has no pip; python:3.11-slim has)"),
            ("the host CA bundle mounted read-only at /run/host-ca.crt with `SSL_CERT_FILE` / "
            "`PIP_CERT` pointing at it (network steps inside the build)"),
        ]
        return [
            ("FROM python:3.11-slim AS base-container", f"FROM {self.base} AS base-container"),
            ("ca-certificates gnupg2 bash build-essential git",
             "ca-certificates gnupg2 bash build-essential git python3-pip"),
            ("ENV PYTHONUNBUFFERED=1\n",
             ("ENV PYTHONUNBUFFERED=1\n\nENV PIP_BREAK_SYSTEM_PACKAGES=1 "
              "SSL_CERT_FILE=/run/host-ca.crt PIP_CERT=/run/host-ca.crt\n")),
        ]

    def build(self) -> float:
        self.version += 1
        env = {"BENTOML_HOME": str(self.home)}
        start = time.perf_counter()
        run([str(self.bentoml), "build", "--version", f"v{self.version}"], cwd=self.src, env=env)
        self.bentoml_build_s.append(time.perf_counter() - start)
        buildah = ["buildah", "bud", "--isolation", "chroot", "--format", "oci", "--layers=true",
                   "--timestamp", "0", "--tls-verify=false", "--volume",
                   f"{HOST_CA}:/run/host-ca.crt:ro", "-t", self.tag]
        proc = run([str(self.python), "-c", CONTAINERIZE, f"churn:v{self.version}",
                    json.dumps(self.edits()), json.dumps(buildah)], cwd=self.src, env=env)
        seconds = time.perf_counter() - start
        self.dockerfile = json.loads(marked(proc.stdout, "BENCH_DOCKERFILE"))
        self.context_models = json.loads(marked(proc.stdout, "BENCH_MODELS"))
        bento = self.home / "bentos" / "churn" / f"v{self.version}"
        self.bento_has_models = (bento / "models").exists()
        return seconds

    def edit(self, n: int) -> None:
        edit_code(self.src / "app", n)

    def check_model(self) -> dict:
        """The bento's model store, as the image holds it (BENTOML_HOME at the bento's root)."""
        name, version = self.model_tag.split(":")
        load = (f"import bentoml\nmodel = bentoml.mlflow.load_model({self.model_tag!r})"
                ".get_raw_model()")
        return check_model_in(self.tag, f"/home/bentoml/bento/models/{name}/{version}/mlflow_model",
                              load, "/home/bentoml/bento/src",
                              env={"BENTOML_HOME": "/home/bentoml/bento"})


def base_image() -> str:
    lock = (EXAMPLE / "envbuild.lock").read_text()
    for line in lock.splitlines():
        if line.startswith("base = "):
            return json.loads(line.split("=", 1)[1].strip())
    raise SystemExit("examples/churn/envbuild.lock pins no base image")


def loadavg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def render(data: dict) -> str:
    e, b, m = data["envbuild"], data["bentoml"], data["model"]
    size_ratio = b["size_bytes"] / e["size_bytes"]
    rebuild_ratio = b["rebuild_median_s"] / e["rebuild_median_s"]
    mib = 1024 * 1024
    same = e["model_check"]["prediction"]["probability"] == b["model_check"]["prediction"]["probability"]
    load1 = max(float(x.split("/")[0]) for x in (data["load_start"], data["load_end"]))
    busy = load1 > data["cpus"] / 2
    lines = [
        "## image",
        "",
        ("envbuild's image vs the Dockerfile `bentoml build` (1.4.40) writes, for the churn example's "
        "service code, requirements and the same trained MLflow model, both built with buildah (`--isolation "
        "chroot --format oci --layers --timestamp 0`, storage driver: the machine's default) from "
        "the same debootstrap base image by digest. Written by `.venv/bin/python "
        "bench/image/run.py`; raw numbers in bench/out/image.json."),
        "",
        f"- date: {data['date']}; envbuild at {data['commit']}",
        f"- machine: {data['machine']}",
        (f"- load average (1/5/15 min) at start {data['load_start']}, at end {data['load_end']}"
         + (f" (**busy**: other work shared the {data['cpus']} CPUs during this run, so "
            "absolute times are inflated and noisy; the tools were interleaved run by run)"
            if busy else "")),
        (f"- the same model in both images: `churn` version {m['version']} (digest "
         f"`{m['digest'][:19]}...`), trained by the example's train.py in a copy of the example "
         "and registered in that copy's sqlite MLflow store; `envbuild lock` pinned it there. "
         "envbuild: `envbuild build` copies the locked files into the image's model layer "
         "(/opt/model). BentoML: `bentoml.mlflow.import_model('churn', "
         f"'models:/churn/{m['version']}')` into its model store (not timed), a "
         "`@bentoml.service` with that model as `bentoml.models.BentoModel` (listed in the "
         "service's models) loading it with `bentoml.mlflow.load_model`, both answering "
         "predict_proba through the same `app.serve.predict`. `bentoml build` (1.4.40) does "
         "not put the model in the stored bento (bento.yaml names it; stored bento has "
         f"models/: {'yes' if b['stored_bento_has_models'] else 'no'}): `bentoml containerize` "
         "adds it to the build context, a copy of the bento plus models/ from the model store "
         "made by BentoML's `construct_containerfile`. The bench calls that function and runs "
         "buildah on its context and Dockerfile (the bento's env/docker/Dockerfile less its "
         "header comment) with the flags above"),
        (f"- **both images contain the model**, checked in each built image (`buildah run` as "
         f"the image's user): the lock's {len(m['files'])} `[model.files]` are in the model "
         f"directory with their locked sha256 (envbuild: {e['model_check']['dir']}, "
         f"{e['model_check']['bytes']} bytes, extra files: "
         f"{', '.join(e['model_check']['extra_files']) or 'none'}; BentoML: "
         f"{b['model_check']['dir']}, {b['model_check']['bytes']} bytes, extra files: "
         f"{', '.join(b['model_check']['extra_files']) or 'none'}"
         + ("; registered_model_meta is written by MLflow's download of a registered version"
            if "registered_model_meta" in b["model_check"]["extra_files"] else "")
         + "), and the image's own "
         f"environment loads it and answers one row ({json.dumps(data['row'])}): envbuild "
         f"p={e['model_check']['prediction']['probability']}, BentoML "
         f"p={b['model_check']['prediction']['probability']}"
         + (" (the same)" if same else " (**they differ**)")),
        "- changes to BentoML's generated Dockerfile that this machine forces:",
        *[f"  - {c}" for c in b["changes"]],
        (f"- code-only rebuild: a one-line change in app/serve.py, then the whole user command, "
        f"each after a warm-up build (every layer cached); median of {data['runs']} runs, "
        "alternating: `envbuild build` (generate + buildah) vs `bentoml build` + containerize's "
        "context + `buildah bud` (the model import is not repeated: a code change does not "
        "need it)"),
        "",
        "| | envbuild | BentoML's Dockerfile | ratio (BentoML / envbuild) | target | met |",
        "|---|---:|---:|---:|---|---|",
        (f"| image size (uncompressed layers) | {e['size_bytes'] / mib:.0f} MiB | "
        f"{b['size_bytes'] / mib:.0f} MiB | {size_ratio:.2f}x | smaller | "
        f"**{'yes' if size_ratio > 1 else 'NO'}** |"),
        (f"| code-only rebuild, whole command | {e['rebuild_median_s']:.1f} s "
        f"({min(e['rebuild_s']):.1f}-{max(e['rebuild_s']):.1f}) | {b['rebuild_median_s']:.1f} s "
        f"({min(b['rebuild_s']):.1f}-{max(b['rebuild_s']):.1f}) | {rebuild_ratio:.2f}x | >= 5x | "
        f"**{'yes' if rebuild_ratio >= 5 else 'NO'}** |"),
        (f"| warm-up build of this run (not a cold build: the layer caches may hold every "
         f"step from earlier runs) | {e['first_s']:.1f} s | {b['first_s']:.1f} s | | | |"),
        "",
        *([(f"The code-only rebuild ratio ({rebuild_ratio:.2f}x) is within 10% of the 5x "
            "target: on this machine run-to-run noise (other work, the disk) can decide whether "
            "one run meets it."), ""]
          if 4.5 <= rebuild_ratio <= 5.5 else []),
        (f"Of BentoML's code-only rebuild, `bentoml build` alone took a median "
         f"{b['bentoml_build_median_s']:.1f} s and the context + `buildah bud` the rest; "
         "envbuild's whole "
         "command is `envbuild build` (generate the bundle, including the model files' digest "
         "check, check the base, build, tag)."),
        "",
        (f"What each image holds. envbuild ({e['layers']} layers): the base; the non-root user; "
         "requirements.txt; a venv of the locked wheels only (installed from hash-checked "
         "wheels without network); the SBOM; the model layer (/opt/model, the locked MLflow "
         "model's files, with ENVBUILD_MODEL_DIR/NAME/VERSION/DIGEST set); the code (/srv/app). "
         f"BentoML ({b['layers']} layers): the base plus build-essential, git and pip (its "
         "apt-get line), uv, and a venv resolved against the live index at build time (no "
         "hashes), then one `COPY . ./` of the whole build context: service.py and app/ under "
         "src/, env/, and the model store's copy of the model (models/churn/<tag>/: BentoML's "
         "model.yaml and the MLflow model under mlflow_model/). That last layer holds code and "
         "model together, so a code change re-copies the model too (here a few KiB)."),
        "",
    ]
    return "\n".join(lines)


def layer_count(ref: str) -> int:
    data = json.loads(run(["buildah", "inspect", "--type", "image", ref]).stdout)
    return len(data["OCIv1"]["rootfs"]["diff_ids"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="code-only rebuilds per tool")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite the section from bench/out/image.json (no builds)")
    args = parser.parse_args()
    if args.render:
        write_results(json.loads((OUT / "image.json").read_text()))
        return 0
    load_start = loadavg()
    log(f"load average at start: {load_start}")
    bentoml = ensure_bento_venv()
    base = base_image()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-image-") as tmp:
        work = Path(tmp)
        project, model = set_up(work)
        bento = Bento(work, bentoml, base, project, str(model["version"]))
        tools: list[Envbuild | Bento] = [Envbuild(project), bento]
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
        load_end = loadavg()
        locked = {rel: f["sha256"] for rel, f in model["files"].items()}
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                capture_output=True, text=True, check=False).stdout.strip()
        data: dict = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit,
            "machine": f"{os.cpu_count()} CPUs, {os.uname().sysname} {os.uname().release}, "
                       f"{run(['buildah', '--version']).stdout.strip()}",
            "cpus": os.cpu_count(),
            "load_start": load_start,
            "load_end": load_end,
            "uptime": run(["uptime"]).stdout.strip(),
            "runs": args.runs,
            "row": ROW,
            "model": {"version": str(model["version"]), "digest": model["digest"],
                      "run_id": model.get("run_id"), "files": locked},
        }
        for tool in tools:
            log(f"{tool.name}: checking the model in the image")
            check = tool.check_model()
            wrong = {rel: check["files"].get(rel) for rel, sha in locked.items()
                     if check["files"].get(rel) != sha}
            if wrong:
                raise SystemExit(f"{tool.name}: the image's model files differ from the lock's "
                                 f"(missing or other content): {wrong}")
            check["extra_files"] = sorted(set(check["files"]) - set(locked))
            data[tool.name] = {
                "tag": tool.tag,
                "size_bytes": image_size(tool.tag),
                "layers": layer_count(tool.tag),
                "first_s": first[tool.name],
                "rebuild_s": rebuilds[tool.name],
                "rebuild_median_s": statistics.median(rebuilds[tool.name]),
                "model_check": check,
                "dockerfile": tool.dockerfile,
            }
        data["bentoml"]["changes"] = bento.changes
        data["bentoml"]["model_tag"] = bento.model_tag
        data["bentoml"]["context_model_files"] = bento.context_models
        data["bentoml"]["stored_bento_has_models"] = bento.bento_has_models
        data["bentoml"]["bentoml_build_median_s"] = statistics.median(bento.bentoml_build_s[1:])
    (OUT / "image.json").write_text(json.dumps(data, indent=2) + "\n")
    write_results(data)
    return 0


def write_results(data: dict) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = render(data)
    tmp_path = RESULTS.with_suffix(".md.tmp")
    tmp_path.write_text(replace_section(text, "## image", section))
    os.replace(tmp_path, RESULTS)
    print(section)


if __name__ == "__main__":
    sys.exit(main())
