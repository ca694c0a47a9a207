"""Lock benchmark: `envbuild lock` vs plain `uv pip compile` vs `pip-compile`, side by side.

Run from the repository root with the project's venv:

    .venv/bin/python bench/lock/run.py                 # default: 3 warm runs, 1 cold, 1 pip-compile
    .venv/bin/python bench/lock/run.py --runs 5 --no-pip-compile

Every tool resolves the same requirement set (bench/lock/requirements.in by default) in its own
work directory, with its own cache directory inside one temp dir:

  envbuild      UV_CACHE_DIR=<tmp>/cache/envbuild   envbuild -C <project> lock --json
  uv            UV_CACHE_DIR=<tmp>/cache/uv         uv pip compile --universal --generate-hashes ...
  uv-pylock     UV_CACHE_DIR=<tmp>/cache/uv-pylock  uv pip compile --format pylock.toml ... (the
                exact uv command envbuild runs, alone: envbuild minus this is envbuild's own cost)
  pip-compile   PIP_CACHE_DIR=<tmp>/cache/pip-compile, --cache-dir (same dir)  pip-compile ...

pip-compile runs with PIP_CONFIG_FILE=/dev/null and without PIP_FIND_LINKS / PIP_INDEX_URL /
PIP_EXTRA_INDEX_URL / PIP_CONSTRAINT, so the machine's local wheel folders and constraints do not
interfere (envbuild's own pip-tools backend does the same); uv runs with --no-config (as envbuild
runs it). Everything resolves against PyPI.

Scenarios (whole commands timed with time.perf_counter around the subprocess):
  cold       empty cache, no previous output
  warm       cache filled by the cold run, no previous output (outputs deleted before each run)
  no-change  cache warm, previous output present: envbuild sees a fresh lock and resolves
             nothing; uv and pip-compile re-resolve (they read the output as preferences)

Writes the raw numbers to bench/out/lock.json and replaces the `## lock` section of
bench/RESULTS.md (other sections are kept as they are).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: shared helpers
from results import replace_section

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
REPO = BENCH.parent
BIN = Path(sys.executable).parent  # the venv's bin: envbuild, pip-compile (and usually uv)

TOOLS = ("envbuild", "uv", "uv-pylock", "pip-compile")
TOOL_TITLES = {
    "envbuild": "envbuild lock",
    "uv": "uv pip compile",
    "uv-pylock": "uv, envbuild's call",
    "pip-compile": "pip-compile",
}
SCENARIOS = ("cold", "warm", "no-change")
SCENARIO_TITLES = {
    "cold": "cold cache, fresh lock",
    "warm": "warm cache, fresh lock",
    "no-change": "no change (lock present)",
}
PYTHON = "3.11"
SPEC = f'name = "benchset"\npython = "{PYTHON}"\nrequirements = ["requirements.in"]\n'
ENVBUILD_OUTPUTS = ("pylock.toml", "requirements.txt", "envbuild.lock")
UV_OUTPUT = "out.txt"
UV_PYLOCK_OUTPUT = "pylock.toml"
PIP_OUTPUT = "requirements.txt"
# pip and uv settings from the environment that would make the tools resolve differently.
UNSET = ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT",
         "PIP_NO_CACHE_DIR", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_INDEX",
         "UV_DEFAULT_INDEX", "UV_NO_CACHE", "UV_OFFLINE", "UV_CONSTRAINT", "UV_OVERRIDE")


def log(message: str) -> None:
    sys.stderr.write(f"[bench lock] {message}\n")
    sys.stderr.flush()


# ---- running and timing -----------------------------------------------------------------------


@dataclass
class Run:
    tool: str
    scenario: str
    index: int
    seconds: float
    returncode: int
    timed_out: bool = False
    packages: int | None = None  # distinct package names in the tool's output
    entries: int | None = None  # `name==version` entries (uv --universal may list a name twice)
    resolved: bool | None = None  # envbuild only: did it resolve (False: lock was fresh)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def timed(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> tuple[float, int, bool, str, str]:
    """Run argv, return (seconds, returncode, timed_out, stdout, stderr). Kills the whole group on timeout."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return time.perf_counter() - start, proc.returncode, False, out, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return time.perf_counter() - start, -9, True, out or "", err or ""


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", re.MULTILINE)


def count_pins(path: Path) -> tuple[int | None, int | None]:
    """(distinct names, entries) in a requirements.txt or a pylock.toml."""
    if not path.is_file():
        return None, None
    if path.suffix == ".toml":
        import tomllib

        raw = [p["name"] for p in tomllib.loads(path.read_text()).get("packages", [])]
    else:
        raw = [m.group(1) for m in _PIN.finditer(path.read_text())]
    names = [re.sub(r"[-_.]+", "-", n).lower() for n in raw]
    return len(set(names)), len(names)


@dataclass
class Bench:
    tmp: Path
    requirements: Path
    timeout: float
    uv: str
    envbuild: str
    pip_compile: str
    runs: list[Run] = field(default_factory=list)

    def work(self, tool: str) -> Path:
        return self.tmp / "work" / tool

    def cache(self, tool: str) -> Path:
        return self.tmp / "cache" / tool

    def setup(self) -> None:
        for tool in TOOLS:
            work = self.work(tool)
            work.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.requirements, work / "requirements.in")
        (self.work("envbuild") / "envbuild.toml").write_text(SPEC)

    def env(self, tool: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in UNSET}
        env["PIP_CONFIG_FILE"] = os.devnull
        env.pop("UV_CACHE_DIR", None)
        env.pop("PIP_CACHE_DIR", None)
        env.pop("PIP_TOOLS_CACHE_DIR", None)
        if tool in ("envbuild", "uv", "uv-pylock"):
            env["UV_CACHE_DIR"] = str(self.cache(tool))
        else:
            env["PIP_CACHE_DIR"] = str(self.cache(tool))
            env["PIP_TOOLS_CACHE_DIR"] = str(self.cache(tool))
        return env

    def argv(self, tool: str) -> list[str]:
        if tool == "envbuild":
            return [self.envbuild, "-C", str(self.work(tool)), "lock", "--json"]
        if tool == "uv":
            return [self.uv, "pip", "compile", "--universal", "--generate-hashes", "requirements.in",
                    "-o", UV_OUTPUT, "--python-version", PYTHON, "--no-config", "--quiet"]
        if tool == "uv-pylock":  # as envbuild.lock.resolvers.uv_argv builds it
            return [self.uv, "pip", "compile", "requirements.in", "--output-file", UV_PYLOCK_OUTPUT,
                    "--format", "pylock.toml", "--universal", "--python-version", PYTHON,
                    "--no-header", "--no-config", "--quiet"]
        return [self.pip_compile, "--generate-hashes", "--allow-unsafe", "--strip-extras", "--quiet",
                "--cache-dir", str(self.cache(tool)), "requirements.in", "-o", PIP_OUTPUT]

    def outputs(self, tool: str) -> list[Path]:
        names = {"envbuild": ENVBUILD_OUTPUTS, "uv": (UV_OUTPUT,), "uv-pylock": (UV_PYLOCK_OUTPUT,),
                 "pip-compile": (PIP_OUTPUT,)}[tool]
        return [self.work(tool) / n for n in names]

    def clear_outputs(self, tool: str) -> None:
        for path in self.outputs(tool):
            path.unlink(missing_ok=True)

    def run(self, tool: str, scenario: str, index: int) -> Run:
        work = self.work(tool)
        if scenario in ("cold", "warm"):
            self.clear_outputs(tool)
        if scenario == "cold":
            shutil.rmtree(self.cache(tool), ignore_errors=True)
        self.cache(tool).mkdir(parents=True, exist_ok=True)
        seconds, rc, timed_out, out, err = timed(self.argv(tool), cwd=work, env=self.env(tool),
                                                 timeout=self.timeout)
        run = Run(tool=tool, scenario=scenario, index=index, seconds=seconds, returncode=rc,
                  timed_out=timed_out)
        if not run.ok:
            tail = (err or out).strip().splitlines()[-15:]
            run.error = "\n".join(tail)
        elif tool == "envbuild":
            try:
                payload = json.loads(out)
                run.resolved = bool(payload.get("resolved"))
            except json.JSONDecodeError:
                payload = {}
            run.packages, run.entries = count_pins(work / "requirements.txt")
            if isinstance(payload.get("packages"), int):
                run.packages = payload["packages"]
        else:
            run.packages, run.entries = count_pins(self.outputs(tool)[0])
        state = "timeout" if timed_out else ("ok" if rc == 0 else f"rc={rc}")
        extra = "" if run.resolved is None else f", resolved={run.resolved}"
        log(f"{scenario:9} {tool:11} #{index + 1}: {seconds:8.2f} s  {state}, "
            f"{run.packages} packages{extra}")
        if run.error:
            log("  " + run.error.replace("\n", "\n  "))
        self.runs.append(run)
        return run


# ---- the import profile of envbuild's no-change path ------------------------------------------


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S.*)$")


def import_profile(bench: Bench, repeats: int = 3) -> dict[str, object]:
    """`python -X importtime -m envbuild.cli.main -C DIR lock` on the fresh lock; last of `repeats`."""
    argv = [sys.executable, "-X", "importtime", "-m", "envbuild.cli.main",
            "-C", str(bench.work("envbuild")), "lock"]
    env = bench.env("envbuild")
    imports: list[dict[str, object]] = []
    total = 0.0
    for _ in range(repeats):
        total, _rc, _timed_out, _out, err = timed(argv, cwd=REPO, env=env, timeout=120)
        imports = []
        for line in err.splitlines():
            m = _IMPORT_LINE.match(line)
            if m:
                imports.append({"module": m.group(4).strip(), "self_us": int(m.group(1)),
                                "cumulative_us": int(m.group(2)), "depth": len(m.group(3)) // 2})
    top_level = [i for i in imports if i["depth"] == 0]
    floor = [timed([sys.executable, "-c", "pass"], cwd=REPO, env=env, timeout=60)[0]
             for _ in range(repeats)]
    floor_imports = [timed([sys.executable, "-c", "import envbuild.cli.main"], cwd=REPO, env=env,
                           timeout=60)[0] for _ in range(repeats)]
    return {
        "argv": argv,
        "wall_seconds": total,
        "python_startup_seconds": statistics.median(floor),
        "import_cli_main_seconds": statistics.median(floor_imports),
        "import_total_us": sum(int(i["cumulative_us"]) for i in top_level),
        "top_cumulative": sorted(imports, key=lambda i: -int(i["cumulative_us"]))[:10],
        "top_self": sorted(imports, key=lambda i: -int(i["self_us"]))[:10],
    }


# ---- machine and summary ----------------------------------------------------------------------


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "unknown"


def machine(bench: Bench) -> dict[str, object]:
    cpu = ""
    mem = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "envbuild"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "uv": tool_version([bench.uv, "--version"]),
        "pip-tools": tool_version([bench.pip_compile, "--version"]),
        "pip": tool_version([sys.executable, "-m", "pip", "--version"]).split(" from ")[0],
        "envbuild": tool_version([bench.envbuild, "--version"]),
        "git": git + (" (envbuild/ has uncommitted changes)" if dirty else ""),
        # Set on some machines: an editable envbuild then compiles its modules on every start.
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
    }


def index_headers(url: str = "https://pypi.org/simple/numpy/") -> dict[str, object]:
    """Which caching headers the index sends: they decide what a warm cache can skip."""
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=30) as r:
            names = sorted(k.lower() for k in r.headers)
    except OSError as exc:
        return {"url": url, "error": str(exc)}
    cacheable = any(n in names for n in ("cache-control", "etag", "last-modified", "expires"))
    return {"url": url, "names": names, "cacheable": cacheable}


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def summarise(runs: list[Run]) -> dict[str, dict[str, dict[str, object]]]:
    out: dict[str, dict[str, dict[str, object]]] = {}
    for scenario in SCENARIOS:
        for tool in TOOLS:
            these = [r for r in runs if r.scenario == scenario and r.tool == tool]
            if not these:
                continue
            ok = [r.seconds for r in these if r.ok]
            cell: dict[str, object] = {"runs": len(these), "ok": len(ok),
                                       "seconds": [round(r.seconds, 4) for r in these]}
            if len(ok) == len(these):
                cell["median"] = statistics.median(ok)
                cell["min"], cell["max"] = min(ok), max(ok)
            elif any(r.timed_out for r in these):
                cell["status"] = "timeout"
            else:
                cell["status"] = f"failed (rc={next(r.returncode for r in these if not r.ok)})"
            pk = [r.packages for r in these if r.packages is not None]
            if pk:
                cell["packages"] = pk[-1]
            out.setdefault(scenario, {})[tool] = cell
    return out


def median(summary: dict, scenario: str, tool: str) -> float | None:
    value = summary.get(scenario, {}).get(tool, {}).get("median")
    return float(value) if value is not None else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ratios(summary: dict) -> list[dict[str, object]]:
    m = lambda s, t: median(summary, s, t)
    rows = [
        {"name": "envbuild / uv, warm cache, fresh lock", "value": ratio(m("warm", "envbuild"), m("warm", "uv")),
         "target": "<= 1.3", "ok": lambda v: v <= 1.3},
        {"name": "uv re-resolve / envbuild no-change", "value": ratio(m("no-change", "uv"), m("no-change", "envbuild")),
         "target": ">= 10", "ok": lambda v: v >= 10},
        {"name": "envbuild / uv, cold cache, fresh lock", "value": ratio(m("cold", "envbuild"), m("cold", "uv"))},
        {"name": "envbuild / its own uv call alone, warm cache, fresh lock",
         "value": ratio(m("warm", "envbuild"), m("warm", "uv-pylock"))},
    ]
    for scenario in SCENARIOS:
        rows.append({"name": f"pip-compile / envbuild, {SCENARIO_TITLES[scenario]}",
                     "value": ratio(m(scenario, "pip-compile"), m(scenario, "envbuild")),
                     "status": summary.get(scenario, {}).get("pip-compile", {}).get("status")})
    for row in rows:
        check = row.pop("ok", None)
        row["met"] = None if check is None or row["value"] is None else bool(check(row["value"]))
    return rows


# ---- RESULTS.md -------------------------------------------------------------------------------


def fmt_seconds(cell: dict | None, timeout: float) -> str:
    if not cell:
        return "not run"
    if "median" in cell:
        value = float(cell["median"])
        def num(v: float) -> str:
            return f"{v:.2f}" if v < 100 else f"{v:.0f}"
        if int(cell["runs"]) > 1:
            return f"{num(value)} ({num(float(cell['min']))}-{num(float(cell['max']))}, n={cell['runs']})"
        return num(value)
    if cell.get("status") == "timeout":
        return f"timeout (> {timeout:.0f} s)"
    return str(cell.get("status", "?"))


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}x" if value < 10 else f"{value:.0f}x"


def fmt_load(load: list[float]) -> str:
    return "/".join(f"{x:.1f}" for x in load)


def busy_note(data: dict) -> str:
    """A warning when other work shared the CPUs: the numbers are then noisier and slower."""
    nproc = int(data["machine"]["nproc"] or 1)
    peak = max(data["load"]["start"][0], data["load"]["end"][0], data["load"]["end"][1])
    if peak <= 0.75 * nproc + 1:
        return ""
    return (f" (**busy**: other work shared the {nproc} CPUs during this run, so absolute times "
            "are inflated and noisy; the tools were interleaved run by run, so the ratios "
            "hold up better)")


def render_section(data: dict) -> str:
    m, s, timeout = data["machine"], data["summary"], data["config"]["timeout"]
    reqs = [line.strip() for line in Path(data["config"]["requirements"]).read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    req_path = Path(data["config"]["requirements"])
    req_name = (req_path.relative_to(REPO).as_posix() if req_path.is_relative_to(REPO)
                else str(req_path))
    packages = {t: next((s[sc][t].get("packages") for sc in SCENARIOS
                         if t in s.get(sc, {}) and s[sc][t].get("packages") is not None), None)
                for t in TOOLS}
    packages = {t: "not run" if n is None else n for t, n in packages.items()}
    lines = [
        "## lock",
        "",
        ("`envbuild lock` vs plain `uv pip compile --universal --generate-hashes` vs "
        "`pip-compile --generate-hashes`, same requirement set, one cache dir per tool. "
        "Written by `.venv/bin/python bench/lock/run.py` (see bench/README.md); raw numbers in "
        "bench/out/lock.json."),
        "",
        f"- date: {data['date']}",
        f"- machine: {m['nproc']} CPUs ({m['cpu'] or 'unknown CPU'}), {m['memory']}, {m['os']}; "
        f"Python {m['python']}; {m['uv']}; pip-tools {m['pip-tools'].split()[-1]} ({m['pip']}); "
        f"{m['envbuild']} at {m['git']}"
        + ("; PYTHONDONTWRITEBYTECODE is set (the editable envbuild compiles its modules from "
           "source on every start)" if m.get("PYTHONDONTWRITEBYTECODE") else ""),
        f"- load average (1/5/15 min) at start {fmt_load(data['load']['start'])}, at end "
        f"{fmt_load(data['load']['end'])}" + busy_note(data),
        f"- requirement set ({req_name}, {len(reqs)} top-level): "
        + ", ".join(f"`{r}`" for r in reqs),
        (f"- packages locked: envbuild {packages['envbuild']} (linux/amd64 + linux/arm64, "
        f"Python {PYTHON}), uv {packages['uv']} (universal: also Windows/macOS-only packages), "
        f"pip-compile {packages['pip-compile']} (this interpreter and platform)"),
        (f"- runs: warm and no-change median of {data['config']['runs']} for envbuild and both uv "
        f"commands; "
        f"cold {data['config']['cold_runs']}; pip-compile {data['config']['pip_runs']} per "
        f"scenario, timeout {timeout:.0f} s"),
        "",
        ("Median wall time in seconds (whole command, from process start to exit; min-max "
        "in brackets). \"uv, envbuild's call\" is the exact `uv pip compile --format "
        "pylock.toml` command envbuild runs, timed alone: envbuild minus it is envbuild's own "
        "cost."),
        "",
        "| scenario | " + " | ".join(TOOL_TITLES[t] for t in TOOLS) + " |",
        "|---|" + "---:|" * len(TOOLS),
    ]
    for scenario in SCENARIOS:
        cells = [fmt_seconds(s.get(scenario, {}).get(t), timeout) for t in TOOLS]
        lines.append(f"| {SCENARIO_TITLES[scenario]} | " + " | ".join(cells) + " |")
    lines += ["", "| ratio | value | target | met |", "|---|---:|---|---|"]
    for row in data["ratios"]:
        value = fmt_ratio(row["value"]) if row["value"] is not None else (row.get("status") or "n/a")
        met = {True: "**yes**", False: "**NO**", None: ""}[row["met"]]
        lines.append(f"| {row['name']} | {value} | {row.get('target', '')} | {met} |")
    caches = data["cache_bytes"]
    lines += [
        "",
        "What each scenario runs:",
        "",
        "- cold: empty cache dir, no previous output.",
        "- warm: the cache the cold run filled, outputs deleted before each run (a fresh lock).",
        ("- no change: cache warm and the previous output present. envbuild sees its lock is "
        "fresh and resolves nothing; `uv pip compile -o out.txt` and `pip-compile` re-resolve "
        "(they only use the existing output as preferences)."),
        "",
        ("Commands (each in its own work dir; envbuild and uv with their own `UV_CACHE_DIR`, "
        "pip-compile with `PIP_CACHE_DIR` and `--cache-dir`; pip with `PIP_CONFIG_FILE=/dev/null` "
        "and no `PIP_FIND_LINKS`, so the machine's local wheel folders and constraints stay out):"),
        "",
        "```",
        "envbuild -C <project> lock --json",
        (f"uv pip compile --universal --generate-hashes requirements.in -o out.txt --python-version "
        f"{PYTHON} --no-config --quiet"),
        (f"uv pip compile requirements.in --output-file pylock.toml --format pylock.toml --universal "
        f"--python-version {PYTHON} --no-header --no-config --quiet   # uv, envbuild's call"),
        ("pip-compile --generate-hashes --allow-unsafe --strip-extras --quiet --cache-dir <dir> "
        "requirements.in -o requirements.txt"),
        "```",
        "",
        "Cache size after the run: " + ", ".join(
            f"{TOOL_TITLES[t]} {caches[t] / 1e6:.1f} MB" for t in TOOLS if t in caches) + ".",
    ]
    headers = data.get("index_headers") or {}
    if headers and not headers.get("cacheable"):
        lines += [
            "",
            (f"Warm is hardly faster than cold here: the index this machine reaches answers "
            f"without Cache-Control, ETag or Last-Modified (a project page of the index sent only: "
            f"{', '.join(headers.get('names', [])) or 'nothing'}), so uv must fetch every "
            "simple page again on each run (its cache only saves the wheel metadata), and "
            "pip's HTTP cache stores nothing at all. Against an index that sends cache headers "
            "warm runs get shorter, and envbuild's fixed cost (the gap to \"uv, envbuild's "
            "call\") weighs more in the 1.3x ratio."),
        ]
    prof = data.get("import_profile")
    if prof:
        lines += [
            "",
            "### lock: envbuild's no-change path",
            "",
            (f"`python -X importtime -m envbuild.cli.main -C DIR lock` on a fresh lock: wall "
            f"{prof['wall_seconds']:.3f} s (with -X importtime's own overhead); the bare "
            f"interpreter (`python -c pass`) takes {prof['python_startup_seconds']:.3f} s and "
            f"`python -c 'import envbuild.cli.main'` {prof['import_cli_main_seconds']:.3f} s. "
            f"Imports: {int(prof['import_total_us']) / 1000:.0f} ms in all. Top 10 by cumulative "
            "time:"),
            "",
            "| module | cumulative ms | self ms |",
            "|---|---:|---:|",
        ]
        for imp in prof["top_cumulative"]:
            lines.append(f"| `{imp['module']}` | {int(imp['cumulative_us']) / 1000:.1f} | "
                         f"{int(imp['self_us']) / 1000:.1f} |")
    return "\n".join(lines) + "\n"


def write_results(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n\nProduced by the scripts under bench/ (see bench/README.md).\n"
    new = replace_section(text, "## lock", section)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


# ---- main -------------------------------------------------------------------------------------


def find_uv() -> str:
    try:
        from uv import find_uv_bin  # the same binary envbuild runs

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            sys.exit("uv not found: install the project with `.venv/bin/pip install -e .`")
        return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="warm / no-change runs for envbuild and uv (default 3)")
    parser.add_argument("--cold-runs", type=int, default=1, help="cold runs per tool (default 1)")
    parser.add_argument("--pip-runs", type=int, default=1, help="pip-compile runs per scenario (default 1)")
    parser.add_argument("--no-pip-compile", action="store_true", help="skip pip-compile (minutes per run)")
    parser.add_argument("--timeout", type=float, default=900.0, help="per command, seconds (default 900)")
    parser.add_argument("--requirements", type=Path, default=HERE / "requirements.in")
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--json", type=Path, default=BENCH / "out" / "lock.json")
    parser.add_argument("--no-results", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (work dirs, caches)")
    args = parser.parse_args(argv)

    tools = [t for t in TOOLS if not (args.no_pip_compile and t == "pip-compile")]
    envbuild = shutil.which("envbuild", path=str(BIN)) or shutil.which("envbuild")
    pip_compile = shutil.which("pip-compile", path=str(BIN)) or shutil.which("pip-compile")
    if not envbuild or ("pip-compile" in tools and not pip_compile):
        sys.exit("envbuild / pip-compile not found: run with the project's venv (.venv/bin/python)")
    tmp = Path(tempfile.mkdtemp(prefix="envbuild-bench-lock-"))
    bench = Bench(tmp=tmp, requirements=args.requirements.resolve(), timeout=args.timeout,
                  uv=find_uv(), envbuild=envbuild, pip_compile=pip_compile or "pip-compile")
    log(f"temp dir {tmp}")
    try:
        bench.setup()
        info = machine(bench)
        log(f"machine: {info}")
        started = dt.datetime.now(dt.UTC)
        load_start = os.getloadavg()

        def count(tool: str, scenario: str) -> int:
            if tool == "pip-compile":
                return args.pip_runs
            return args.cold_runs if scenario == "cold" else args.runs

        # Interleave the tools run by run, so drift in the network or the machine hits all alike.
        # The last cold run leaves its cache behind: that is the warm cache.
        for scenario in SCENARIOS:
            for i in range(max(count(t, scenario) for t in tools)):
                for tool in tools:
                    if i < count(tool, scenario):
                        bench.run(tool, scenario, i)
        profile = import_profile(bench)
        summary = summarise(bench.runs)
        data = {
            "date": started.strftime("%Y-%m-%d %H:%M UTC"),
            "machine": info,
            "config": {"runs": args.runs, "cold_runs": args.cold_runs, "pip_runs": args.pip_runs,
                       "timeout": args.timeout, "requirements": str(bench.requirements),
                       "tools": tools, "python": PYTHON,
                       "argv": {t: bench.argv(t) for t in tools}},
            "runs": [asdict(r) for r in bench.runs],
            "summary": summary,
            "ratios": ratios(summary),
            "cache_bytes": {t: dir_size(bench.cache(t)) for t in tools},
            "import_profile": profile,
            "index_headers": index_headers(),
            "load": {"start": load_start, "end": os.getloadavg()},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        log(f"wrote {args.json}")
        section = render_section(data)
        if not args.no_results:
            write_results(args.results, section)
            log(f"wrote the '## lock' section of {args.results}")
        sys.stdout.write(section)
        bad = [r for r in bench.runs if r.tool == "envbuild" and r.scenario == "no-change" and r.resolved]
        if bad:
            log("WARNING: envbuild re-resolved in the no-change scenario")
        return 0
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
