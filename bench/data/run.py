"""Data benchmark: envbuild data vs openssl, sha256sum, cat, a hashlib loop, an lstat walk, DVC.

Run from the repository root with the project's venv:

    .venv/bin/python bench/data/run.py                  # 2 GiB file, 20,000 files, 3 runs each
    .venv/bin/python bench/data/run.py --big-mib 256 --small-files 2000 --runs 1   # a quick look

Everything runs side by side on the same data in one temp dir, page cache warm (the data is read
once before timing), whole commands timed from process start to exit:

  one large file (--big-mib, default 2048 MiB of random bytes):
    cat FILE > /dev/null                    the read limit
    openssl dgst -sha256 FILE, sha256sum FILE
    envbuild data verify big/big.bin        re-hash only (page-aligned buffer)
    envbuild data add big/big.bin           hash + store in the cache (empty cache), + lock write
    envbuild data add --link hardlink ...   hash + hard-link into the cache (no copy)
    dvc add big/big.bin                     md5 + copy into .dvc/cache (empty cache)
    dd if=FILE of=COPY bs=1M                the disk's write cost for the same bytes
  many small files (--small-files, default 20,000 of 4 to 64 KiB in 100 directories):
    python lstat walk                       os.walk + os.lstat of every file (interpreter start incl.)
    python hashlib loop                     sha256 of every file, one process (hashlib.file_digest)
    envbuild data verify small              re-hash, worker processes
    envbuild data add small                 hash + store (empty cache); and with --link hardlink
    dvc add small                           (empty cache)
    cp -r small COPY                        the disk's cost of writing the same 20,000 files
    bare store loop                         read + sha256 + O_TMPFILE write + linkat per file, a
                                            process per CPU, nothing else (STORE_LOOP): a floor
  the same adds on a file system with reflinks (root and mkfs.xfs; --no-xfs skips it): a fresh
  XFS loop-mounted from a sparse file in the temp dir, the data copied onto it, caches there too:
    envbuild data add big/big.bin, small    --link auto (the default): hash + clone into the cache
    dvc add big/big.bin, small              DVC's default cache.type reflink,copy: md5 + clone
    cp -r --reflink=always small COPY       clones only: the floor
  nothing changed (both paths pinned, stat caches warm):
    envbuild data status                    stat cache: no file is read
    dvc status

Every write-heavy command starts on a quiet disk: `sync`, then a probe (create 100 empty files)
until it runs fast (at most 30 s). Without that, deleting a previous run's cache (the file system
discards freed blocks for tens of seconds here) or flushing its dirty pages made the next command
several times slower, whichever tool it was. For the same reason nothing is deleted between timed
runs: each run of each tool gets a new cache directory (DVC: also a new site cache dir, where
DVC 3 keeps its hash state, so that a second `dvc add` does not skip hashing), all removed at
the end. The writing commands run in turn, run by run (dd, cp, dvc, envbuild; again), so that
the disk's drift over the run hits every tool alike.

Writes raw numbers to bench/out/data.json and replaces only the `## data` section of
bench/RESULTS.md. Needs openssl, sha256sum and dvc (the venv's, from the test extra).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: shared helpers
from results import replace_section

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
REPO = BENCH.parent
BIN = Path(sys.executable).parent
GB = 1e9

WALK = """
import os, sys
n = 0
for d, _, names in os.walk(sys.argv[1]):
    for name in names:
        os.lstat(os.path.join(d, name)); n += 1
print(n)
"""
HASH_LOOP = """
import hashlib, os, sys
for d, _, names in os.walk(sys.argv[1]):
    for name in names:
        with open(os.path.join(d, name), 'rb') as f:
            hashlib.file_digest(f, 'sha256').hexdigest()
"""

# The least a tool that copies files into a sha256-named cache must do, in Python, on every CPU:
# each file read once, hashed, written to a nameless temp in the cache and linked in under its
# digest. No stat cache, no lock, no listing, no error handling: a floor, not a tool.
STORE_LOOP = """
import ctypes, hashlib, mmap, os, sys
src, cache = sys.argv[1], sys.argv[2]
files = [os.path.join(d, n) for d, _, names in os.walk(src) for n in names]
os.makedirs(cache + '/tmp')
for i in range(256):
    os.makedirs(f'{cache}/sha256/{i:02x}')
linkat = ctypes.CDLL(None, use_errno=True).linkat
n_proc = os.cpu_count() or 1
pids = []
for k in range(n_proc):
    pid = os.fork()
    if pid == 0:
        buf = mmap.mmap(-1, 1 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        view = memoryview(buf)
        for path in files[k::n_proc]:
            fd = os.open(path, os.O_RDONLY)
            os.fstat(fd)
            n = os.readv(fd, [buf])
            os.close(fd)
            h = hashlib.sha256(view[:n]).hexdigest()
            t = os.open(cache + '/tmp', os.O_TMPFILE | os.O_WRONLY, 0o444)
            os.write(t, view[:n])
            if linkat(t, b'', -100, f'{cache}/sha256/{h[:2]}/{h[2:]}'.encode(), 0x1000):
                os._exit(1)
            os.close(t)
        os._exit(0)
    pids.append(pid)
sys.exit(max(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids))
"""


def log(message: str) -> None:
    sys.stderr.write(f"[bench data] {message}\n")
    sys.stderr.flush()


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if not found:
        sys.exit(f"{name} not found (install the test extra: .venv/bin/pip install -e '.[test]')")
    return found


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds


def make_data(root: Path, big_mib: int, small_files: int) -> dict[str, int]:
    big = root / "big" / "big.bin"
    big.parent.mkdir(parents=True)
    with open(big, "wb") as f:
        f.writelines(os.urandom(64 << 20) for _ in range(big_mib // 64))
        f.write(os.urandom((big_mib % 64) << 20))
    rnd = random.Random(20000)
    total = 0
    for i in range(small_files):
        path = root / "small" / f"d{i % 100:03d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = rnd.randint(4 << 10, 64 << 10)
        path.write_bytes(rnd.randbytes(size))
        total += size
    old = time.time() - 3600  # outside the stat cache's racy window, as settled data is
    for d, _, names in os.walk(root):
        for name in names:
            os.utime(os.path.join(d, name), (old, old))
    return {"big_bytes": big.stat().st_size, "small_bytes": total, "small_files": small_files}


def memory() -> str:
    """Free memory and page cache now: on this VM, memory the guest has not touched for a while
    costs a host fault per page on first use (bench/README), so copies run slower when much of
    the RAM is free than when the page cache fills it."""
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    except OSError:
        return "?"
    mib = {k: int(info[k].split()[0]) >> 10 for k in ("MemTotal", "MemFree", "Cached")}
    return (f"{mib['MemFree']} MiB free and {mib['Cached']} MiB page cache of "
            f"{mib['MemTotal']} MiB")


def snapshot(root: Path) -> dict[str, tuple[int, int, int, int]]:
    """(inode, mode, links, size) of the data files: root/big/big.bin and all of root/small.

    Not the mtime: `dvc add` of a large file sets it again (same inode, same bytes).
    """
    paths = [str(root / "big" / "big.bin")]
    for d, _, names in os.walk(root / "small"):
        paths += [os.path.join(d, name) for name in names]
    out = {}
    for path in paths:
        st = os.lstat(path)
        out[path] = (st.st_ino, st.st_mode, st.st_nlink, st.st_size)
    return out


def settle(probe_dir: Path, limit_s: float = 30.0) -> float:
    """sync, then wait until creating 100 empty files takes under 10 ms; the seconds waited.

    Each probe writes into a new directory and deletes nothing: on this disk deleting files makes
    the next creations slower for a while, so a probe that cleaned up after itself would measure
    its own cleaning. The probe directories go with the temp dir at the end.
    """
    start = time.monotonic()
    os.sync()
    while True:
        directory = probe_dir / str(time.monotonic_ns())
        directory.mkdir(parents=True)
        t = time.perf_counter()
        for i in range(100):
            os.close(os.open(directory / str(i), os.O_WRONLY | os.O_CREAT, 0o644))
        took = time.perf_counter() - t
        waited = time.monotonic() - start
        if took < 0.010 or waited > limit_s:
            return waited
        time.sleep(0.5)


def write_lock(project: Path) -> None:
    sys.path.insert(0, str(REPO))
    from envbuild.lock.bundle import EnvbuildLock, ImagePin, PythonPin, render_lock

    lock = EnvbuildLock(
        name="bench",
        python=PythonPin(version="3.11", platforms=("linux/amd64",), glibc="2.36", index_url=None,
                         lock_file="pylock.toml", lock_digest="sha256:" + "a" * 64,
                         requirements_file="requirements.txt",
                         requirements_digest="sha256:" + "b" * 64, packages=0),
        image=ImagePin(name="bench"), inputs={"envbuild.toml": "sha256:" + "e" * 64},
        resolver="uv")
    (project / "envbuild.lock").write_bytes(render_lock(lock))


class Bench:
    def __init__(self, tmp: Path, runs: int, dvc_runs: int) -> None:
        self.tmp, self.runs, self.dvc_runs = tmp, runs, dvc_runs
        self.project = tmp / "project"
        # A copy of the project's data for the hard-linked adds (see run_envbuild).
        self.hardlink_project = tmp / "project-hardlink"
        self.envbuild, self.dvc = tool("envbuild"), tool("dvc")
        self.times: dict[str, list[float]] = {}
        self.settled: list[float] = []
        self.env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
        self.count = 0

    def record(self, name: str, seconds: float) -> None:
        self.times.setdefault(name, []).append(seconds)
        log(f"{name}: {seconds:.3f} s")

    def fresh(self, name: str) -> Path:
        """A new, empty directory under the temp dir (nothing is deleted between timed runs)."""
        self.count += 1
        return self.tmp / f"{name}-{self.count}"

    def settle(self) -> None:
        self.settled.append(settle(self.tmp / "probe"))

    def eb(self, *args: str, project: Path | None = None) -> list[str]:
        return [self.envbuild, "-C", str(project or self.project), "data", *args]

    def reset_envbuild(self, project: Path | None = None) -> None:
        project = project or self.project
        self.env["ENVBUILD_CACHE"] = str(self.fresh("envbuild-cache"))
        shutil.rmtree(project / ".envbuild", ignore_errors=True)  # one small file
        write_lock(project)

    def reset_dvc(self) -> None:
        for key, name in (("cache.dir", "dvc-cache"), ("core.site_cache_dir", "dvc-site")):
            subprocess.run([self.dvc, "config", "--local", key, str(self.fresh(name))],
                           cwd=self.project, check=True, env=self.env)
        for name in ("big/big.bin.dvc", "small.dvc", "big/.gitignore", ".gitignore"):
            (self.project / name).unlink(missing_ok=True)

    def run_envbuild(self) -> None:
        p = self.project
        self.reset_envbuild()
        self.settle()
        self.record("envbuild-add-big", timed(self.eb("add", "big/big.bin"), p, self.env))
        self.settle()
        self.record("envbuild-add-small", timed(self.eb("add", "small"), p, self.env))
        self.record("envbuild-verify-big", timed(self.eb("verify", "big/big.bin"), p, self.env))
        self.record("envbuild-verify-small", timed(self.eb("verify", "small"), p, self.env))
        # On the copy of the data, never on the data the other tools read: a hard-linked add
        # makes every file read-only and a second link of a cache object, and the next
        # `dvc add` of such files writes each of them again (measured: 16 s instead of 8).
        h = self.hardlink_project
        self.reset_envbuild(h)
        self.settle()
        self.record("envbuild-add-big-hardlink",
                    timed(self.eb("add", "--link", "hardlink", "big/big.bin", project=h), h,
                          self.env))
        self.settle()
        self.record("envbuild-add-small-hardlink",
                    timed(self.eb("add", "--link", "hardlink", "small", project=h), h, self.env))

    def run(self) -> None:
        p, py = self.project, sys.executable
        # Bytecode for envbuild, as `pip install` writes it for DVC and every installed package:
        # an editable install has none, and with PYTHONDONTWRITEBYTECODE=1 (set on this machine)
        # every envbuild command would compile its modules again (20-30 ms each).
        subprocess.run([py, "-m", "compileall", "-q", str(REPO / "envbuild")], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["git", "init", "-q"], cwd=p, check=True)
        subprocess.run([self.dvc, "init", "-q"], cwd=p, check=True, env=self.env)
        subprocess.run([self.dvc, "config", "core.analytics", "false"], cwd=p, check=True,
                       env=self.env)
        big = str(p / "big" / "big.bin")
        before = snapshot(p)  # every tool must leave the data as it found it (see the end)
        timed(["cat", big], p)  # into the page cache
        timed([py, "-c", HASH_LOOP, str(p / "small")], p)
        for _ in range(self.runs):
            self.record("cat", timed(["cat", big], p))
            self.record("openssl", timed(["openssl", "dgst", "-sha256", big], p))
            self.record("hashlib-loop", timed([py, "-c", HASH_LOOP, str(p / "small")], p))
        self.record("sha256sum", timed(["sha256sum", big], p))  # 0.18 GB/s: once is enough
        # Writes run by run, the tools in turn: the disk's state drifts, and each run of each
        # tool faces the same drift.
        for run in range(max(self.runs, self.dvc_runs)):
            if run < self.runs:
                self.settle()
                self.record("dd-big", timed(["dd", f"if={big}", f"of={self.fresh('dd')}",
                                             "bs=1M"], p))
                self.settle()
                self.record("cp-small", timed(["cp", "-r", str(p / "small"),
                                               str(self.fresh("cp"))], p))
                self.settle()
                self.record("store-loop", timed([py, "-c", STORE_LOOP, str(p / "small"),
                                                 str(self.fresh("store-loop"))], p))
            if run < self.dvc_runs:
                self.reset_dvc()
                self.settle()
                self.record("dvc-add-big", timed([self.dvc, "add", "-q", "big/big.bin"], p,
                                                 self.env))
                self.settle()
                self.record("dvc-add-small", timed([self.dvc, "add", "-q", "small"], p,
                                                   self.env))
            if run < self.runs:
                self.run_envbuild()
        after = snapshot(p)
        changed = [path for path, st in after.items() if before.get(path) != st]
        if changed or len(before) != len(after):
            # A tool that rewrote, relinked or chmod-ed the files would make the next tool's
            # run measure something else (as the hard-linked adds once did to dvc add).
            raise SystemExit(f"the benchmark's data changed under it ({len(changed)} files, "
                             f"e.g. {changed[:3]}): the timings would not compare")
        # The stat cache keeps nothing written within its racy window (2 s, statcache.py): a
        # status run the instant after `data add` hashes again. Wait as a later status would.
        time.sleep(2.5)
        timed(self.eb("status"), p, self.env)  # the stat cache as a later status finds it
        timed([self.dvc, "status", "-q"], p, self.env)
        # The baselines in turn with the statuses: after gigabytes of writes the kernel's inode
        # cache is not what it was at the start, and a walk measured then would not compare.
        for _ in range(self.runs):
            self.record("python-start", timed([py, "-c", "pass"], p))
            self.record("lstat-walk", timed([py, "-c", WALK, str(p / "small")], p))
            self.record("envbuild-status", timed(self.eb("status"), p, self.env))
            self.record("envbuild-status-small", timed(self.eb("status", "small"), p, self.env))
            self.record("dvc-status", timed([self.dvc, "status"], p, self.env))


    def run_reflink(self) -> None:
        """The same adds on a file system with reflinks, where every tool can clone.

        DVC's default cache.type is "reflink,copy" and `data add --link auto` (the default)
        clones too, so here no tool copies a byte into its cache; `cp -r --reflink=always` is
        the floor. Both caches live on the same XFS as the data (a clone cannot cross file
        systems).
        """
        p = self.project
        subprocess.run(["git", "init", "-q"], cwd=p, check=True)
        subprocess.run([self.dvc, "init", "-q"], cwd=p, check=True, env=self.env)
        subprocess.run([self.dvc, "config", "core.analytics", "false"], cwd=p, check=True,
                       env=self.env)
        big, small = str(p / "big" / "big.bin"), str(p / "small")

        def warm(path: str) -> None:
            # `dvc add` replaces each working file with a clone of its cache object: a new
            # inode, none of it in the page cache. Every add starts from a warm page cache, as
            # on ext4, so no tool pays for the one before it.
            if path == big:
                timed(["cat", big], p)
            else:
                timed([sys.executable, "-c", HASH_LOOP, small], p)

        for _ in range(max(self.runs, self.dvc_runs)):
            warm(small)
            self.settle()
            self.record("cp-small", timed(["cp", "-r", "--reflink=always", small,
                                           str(self.fresh("cp"))], p))
            tools = (("dvc", self.dvc_runs, self.reset_dvc,
                      lambda name: [self.dvc, "add", "-q", name]),
                     ("envbuild", self.runs, self.reset_envbuild,
                      lambda name: self.eb("add", name)))
            for tool, runs, reset, argv in tools:
                if len(self.times.get(f"{tool}-add-small", [])) >= runs:
                    continue
                reset()
                for path, name, which in ((big, "big/big.bin", "big"), (small, "small", "small")):
                    warm(path)
                    self.settle()
                    self.record(f"{tool}-add-{which}", timed(argv(name), p, self.env))


def mount_xfs(tmp: Path, size: int) -> Path | None:
    """A fresh XFS with reflinks, loop-mounted at tmp/xfs; None where that cannot be done."""
    if os.geteuid() != 0 or not shutil.which("mkfs.xfs"):
        return None
    image, mnt = tmp / "xfs.img", tmp / "xfs"
    with open(image, "wb") as f:
        f.truncate(size)  # sparse: only what is written takes space
    mnt.mkdir()
    for argv in (["mkfs.xfs", "-q", "-f", "-m", "reflink=1", str(image)],
                 ["mount", "-o", "loop", str(image), str(mnt)]):
        if subprocess.run(argv, capture_output=True, check=False).returncode != 0:
            return None
    return mnt


def median(values: list[float]) -> float:
    return statistics.median(values)


def summarize(times: dict[str, list[float]], sizes: dict[str, int]) -> dict[str, object]:
    m = {k: median(v) for k, v in times.items()}
    big, _small = sizes["big_bytes"], sizes["small_bytes"]
    rate = {k: big / m[k] / GB for k in ("cat", "openssl", "sha256sum", "envbuild-verify-big",
                                          "envbuild-add-big", "envbuild-add-big-hardlink",
                                          "dvc-add-big", "dd-big")}
    baseline = m["lstat-walk"]  # a subprocess: interpreter start + the walk
    rows = [
        ("large file: envbuild verify throughput (GB/s)", rate["envbuild-verify-big"],
         ">= 1.2 GB/s", rate["envbuild-verify-big"] >= 1.2),
        ("large file: envbuild verify vs openssl dgst -sha256 (throughput ratio)",
         rate["envbuild-verify-big"] / rate["openssl"], ">= 1.0x", 
         rate["envbuild-verify-big"] >= rate["openssl"]),
        ("large file: envbuild verify vs sha256sum", rate["envbuild-verify-big"]
         / rate["sha256sum"], "", None),
        ("large file: envbuild verify vs the read limit (cat)", rate["envbuild-verify-big"]
         / rate["cat"], "", None),
        ("large file: dvc add / envbuild data add (time)", m["dvc-add-big"]
         / m["envbuild-add-big"], "", None),
        ("20k files: dvc add / envbuild data add (time)", m["dvc-add-small"]
         / m["envbuild-add-small"], ">= 10x", m["dvc-add-small"] / m["envbuild-add-small"] >= 10),
        ("20k files: dvc add / envbuild data add --link hardlink (time)", m["dvc-add-small"]
         / m["envbuild-add-small-hardlink"], ">= 10x",
         m["dvc-add-small"] / m["envbuild-add-small-hardlink"] >= 10),
        ("large file: dvc add / envbuild data add --link hardlink (time)", m["dvc-add-big"]
         / m["envbuild-add-big-hardlink"], "", None),
        ("20k files: envbuild data add / cp -r of the same files (time)",
         m["envbuild-add-small"] / m["cp-small"], "", None),
        ("20k files: dvc add / cp -r of the same files (time)", m["dvc-add-small"]
         / m["cp-small"], "", None),
        (("20k files: dvc add / bare store loop (time; about the most a Python tool that copies "
         "each file into its cache can reach here)"), m["dvc-add-small"] / m["store-loop"], "",
         None),
        ("20k files: envbuild data add / bare store loop (time)", m["envbuild-add-small"]
         / m["store-loop"], "", None),
        ("large file: envbuild data add / dd of the same file (time)", m["envbuild-add-big"]
         / m["dd-big"], "", None),
        ("20k files: hashlib loop (1 process) / envbuild verify (time)", m["hashlib-loop"]
         / m["envbuild-verify-small"], "", None),
        ("20k files: envbuild verify / lstat walk (time)", m["envbuild-verify-small"]
         / baseline, "", None),
        ("no change: envbuild data status / (lstat walk + interpreter start)",
         m["envbuild-status"] / baseline, "<= 1.5x", m["envbuild-status"] / baseline <= 1.5),
        ("no change: dvc status / envbuild data status (time)", m["dvc-status"]
         / m["envbuild-status"], ">= 3x", m["dvc-status"] / m["envbuild-status"] >= 3),
    ]
    x = {k.removeprefix("xfs:"): median(v) for k, v in times.items() if k.startswith("xfs:")}
    if x:
        rows += [
            # The 10x is for the machine's own disk (ext4 here), where dvc add copies.
            # Here dvc clones too: 10x would need a tool faster than cp -r --reflink alone
            # (next row but one: the most any tool that clones each file can reach).
            ("XFS (reflinks): 20k files: dvc add / envbuild data add (time)",
             x["dvc-add-small"] / x["envbuild-add-small"], "", None),
            ("XFS (reflinks): 20k files: dvc add / cp -r --reflink (time; the most a tool that "
             + "clones each file can reach)", x["dvc-add-small"] / x["cp-small"], "", None),
            ("XFS (reflinks): large file: dvc add / envbuild data add (time)",
             x["dvc-add-big"] / x["envbuild-add-big"], "", None),
            ("XFS (reflinks): 20k files: envbuild data add / cp -r --reflink (time)",
             x["envbuild-add-small"] / x["cp-small"], "", None),
        ]
    return {"medians": m, "rates_gb_s": rate,
            "ratios": [{"name": n, "value": v, "target": t, "met": ok} for n, v, t, ok in rows]}


def render(data: dict) -> str:
    m, r, s = data["summary"]["medians"], data["summary"]["rates_gb_s"], data["sizes"]
    mach = data["machine"]
    n_small = s["small_files"]

    def every(key: str) -> str:  # the spread: this machine's disk drifts a lot
        return ", ".join(f"{t:.2f}" for t in data["times"][key])

    lines = [
        "## data",
        "",
        ("`envbuild data` vs `openssl dgst -sha256`, `sha256sum`, `cat`, a one-process hashlib "
        "loop, a bare lstat walk and DVC, side by side on the same data in one run. Written by "
        "`.venv/bin/python bench/data/run.py`; raw numbers in bench/out/data.json."),
        "",
        (f"- date: {data['date']}; machine: {mach['nproc']} CPUs, {mach['os']}, Python "
        f"{mach['python']}, {mach['dvc']}, {mach['openssl']}; envbuild at {mach['git']}"),
        (f"- load average (1 min, this machine has {mach['nproc']} CPUs): {mach['load']} when the "
        f"run started, {mach['load_after']} when it ended; before each write-heavy command the "
        f"disk was let settle (sync, then a file-creation probe): waits of "
        f"{min(data['settled']):.1f} to {max(data['settled']):.1f} s"),
        *([(f"- memory: {mach['memory']} when the run started; {mach['memory_after']} when it "
           f"ended")] if "memory" in mach else []),
        (f"- data: one file of {s['big_bytes'] / 2**30:.2f} GiB (random bytes); {n_small} files of "
        f"4 to 64 KiB ({s['small_bytes'] / GB:.2f} GB) in 100 directories; page cache warm; "
        f"median of {data['runs']} runs ({data['dvc_runs']} for dvc add, 1 for sha256sum)"),
        "",
        "| one large file | seconds (median) | GB/s | every run, seconds |",
        "|---|---:|---:|---|",
    ]
    for key, label in (("cat", "`cat FILE > /dev/null` (read limit)"),
                       ("openssl", "`openssl dgst -sha256`"), ("sha256sum", "`sha256sum`"),
                       ("envbuild-verify-big", "`envbuild data verify` (re-hash)"),
                       ("envbuild-add-big", "`envbuild data add` (hash + copy into the cache)"),
                       ("envbuild-add-big-hardlink", "`envbuild data add --link hardlink`"),
                       ("dvc-add-big", "`dvc add` (md5 + copy into its cache)"),
                       ("dd-big", "`dd` of the file to a new file (the disk's write cost)")):
        lines.append(f"| {label} | {m[key]:.2f} | {r[key]:.2f} | {every(key)} |")
    lines += ["", f"| {n_small} small files | seconds (median) | every run, seconds |",
              "|---|---:|---|"]
    for key, label in (("python-start", "`python -c pass` (interpreter start)"),
                       ("lstat-walk", "bare lstat walk (`os.walk` + `os.lstat`, a python process)"),
                       ("hashlib-loop", "hashlib loop, one process"),
                       ("envbuild-verify-small", "`envbuild data verify small` (worker processes)"),
                       ("envbuild-add-small", "`envbuild data add small` (hash + copy)"),
                       ("envbuild-add-small-hardlink",
                        "`envbuild data add --link hardlink small` (hash + link)"),
                       ("dvc-add-small", "`dvc add small`"),
                       ("cp-small", "`cp -r small` to a new directory (a plain copy)"),
                       ("store-loop", ("bare store loop: read, sha256, write to a nameless temp "
                        "in a cache, link in; a process per CPU, nothing else")),
                       ("envbuild-status-small", "`envbuild data status small`, nothing changed"),
                       ("envbuild-status", "`envbuild data status` (both refs), nothing changed"),
                       ("dvc-status", "`dvc status` (both), nothing changed")):
        lines.append(f"| {label} | {m[key]:.2f} | {every(key)} |")
    if "xfs:cp-small" in m:
        lines += ["", (f"On a file system with reflinks (a fresh XFS, loop-mounted from a file on "
                       f"the same disk; data, caches and copies all on it), median of "
                       f"{data['runs']} runs ({data['dvc_runs']} for dvc add):"), "",
                  "| XFS with reflinks | seconds (median) | every run, seconds |", "|---|---:|---|"]
        for key, label in (
                ("envbuild-add-big", "`envbuild data add big/big.bin` (hash + clone)"),
                ("dvc-add-big", "`dvc add big/big.bin` (md5 + clone: cache.type reflink,copy)"),
                ("envbuild-add-small", f"`envbuild data add small` ({n_small} files, hash + clone)"),
                ("dvc-add-small", "`dvc add small` (md5 + clone)"),
                ("cp-small", "`cp -r --reflink=always small` (clones only, no hashing)")):
            lines.append(f"| {label} | {m['xfs:' + key]:.2f} | {every('xfs:' + key)} |")
    lines += ["", "| ratio | value | target | met |", "|---|---:|---|---|"]
    for row in data["summary"]["ratios"]:
        met = {True: "**yes**", False: "**NO**", None: ""}[row["met"]]
        lines.append(f"| {row['name']} | {row['value']:.2f} | {row['target']} | {met} |")
    lines += ["", ("Notes: every command is a whole process (interpreter start included); "
              "`envbuild data add` (default --link auto) also stores each object in its cache (a "
              "copy on this ext4: no reflinks; a clone on the XFS) and rewrites envbuild.lock, as `dvc add` copies into `.dvc/cache`; "
              "`--link hardlink` links each file into the cache instead (no copy), as DVC's "
              "`cache.type hardlink` does. Each run of each tool starts with an empty cache in "
              "a new directory on a settled disk (see bench/data/run.py). The no-change status "
              "reads no file and no TOML: the stat cache (size, mtime, inode, mode of every "
              "file, and the lock's [data] table) answers.")]
    return "\n".join(lines) + "\n"


def run_on_xfs(tmp: Path, project: Path, args: argparse.Namespace, bench: Bench) -> None:
    """The adds again on a reflink file system; times land in bench.times as "xfs:<name>"."""
    data_bytes = sum(f.stat().st_size for f in project.rglob("*") if f.is_file())
    mnt = mount_xfs(tmp, 3 * data_bytes + (1 << 30))
    if mnt is None:
        log("no XFS with reflinks (needs root and mkfs.xfs): that part is skipped")
        return
    try:
        log(f"copying the data to XFS at {mnt}")
        (mnt / "project").mkdir()
        for name in ("big", "small"):
            subprocess.run(["cp", "-a", str(project / name), str(mnt / "project")], check=True)
        write_lock(mnt / "project")
        xfs = Bench(mnt, args.runs, args.dvc_runs)
        xfs.run_reflink()
        for name, values in xfs.times.items():
            bench.times["xfs:" + name] = values
        bench.settled += xfs.settled
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def version(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big-mib", type=int, default=2048)
    parser.add_argument("--small-files", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dvc-runs", type=int, default=3)
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--json", type=Path, default=BENCH / "out" / "data.json")
    parser.add_argument("--no-results", action="store_true", help="leave RESULTS.md alone")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--from-json", type=Path, metavar="DATA_JSON",
                        help="run nothing: render RESULTS.md again from a saved run's data.json "
                             "(after a change to the tables or ratios)")
    parser.add_argument("--no-xfs", action="store_true",
                        help="skip the adds on a loop-mounted XFS with reflinks (needs root "
                             "and mkfs.xfs)")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        data = json.loads(args.from_json.read_text())
        data["summary"] = summarize(data["times"], data["sizes"])
        write_results(data, args)
        return 0
    for name in ("openssl", "sha256sum", "cat", "git"):
        if not shutil.which(name):
            sys.exit(f"{name} not found")
    tmp = Path(tempfile.mkdtemp(prefix="envbuild-bench-data-"))
    log(f"temp dir {tmp}")
    try:
        project = tmp / "project"
        project.mkdir()
        log(f"writing {args.big_mib} MiB and {args.small_files} small files")
        sizes = make_data(project, args.big_mib, args.small_files)
        (tmp / "project-hardlink").mkdir()
        for name in ("big", "small"):
            subprocess.run(["cp", "-a", str(project / name), str(tmp / "project-hardlink")],
                           check=True)
        settle(tmp / "probe")
        bench = Bench(tmp, args.runs, args.dvc_runs)
        load, mem = f"{os.getloadavg()[0]:.1f}", memory()
        bench.run()
        if not args.no_xfs:
            run_on_xfs(tmp, project, args, bench)
        git = version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
        dirty = version(["git", "-C", str(REPO), "status", "--porcelain", "envbuild/data"])
        data = {
            "date": dt.date.today().isoformat(), "runs": args.runs, "dvc_runs": args.dvc_runs,
            "sizes": sizes, "times": bench.times, "settled": bench.settled,
            "summary": summarize(bench.times, sizes),
            "machine": {"nproc": os.cpu_count(), "os": platform.platform(),
                        "python": platform.python_version(),
                        "dvc": "dvc " + version([bench.dvc, "--version"]),
                        "openssl": version(["openssl", "version"]).split(" (")[0],
                        "git": git + (" (envbuild/data modified)" if dirty else ""),
                        "load": load, "load_after": f"{os.getloadavg()[0]:.1f}",
                        "memory": mem, "memory_after": memory()},
        }
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    write_results(data, args)
    return 0


def write_results(data: dict, args: argparse.Namespace) -> None:
    """data.json, and this run's section of RESULTS.md (unless --no-results)."""
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    section = render(data)
    sys.stdout.write(section)
    if not args.no_results:
        text = args.results.read_text() if args.results.exists() else (
            "# Benchmark results\n\nProduced by the scripts under bench/ (see bench/README.md).\n")
        tmp_results = args.results.with_suffix(".md.data-tmp")
        tmp_results.write_text(replace_section(text, "## data", section))
        os.replace(tmp_results, args.results)


if __name__ == "__main__":
    sys.exit(main())
