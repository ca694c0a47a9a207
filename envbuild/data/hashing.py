"""Hashing files fast: page-aligned buffers, stat before and after, worker processes for many.

Why page-aligned: on these CPUs reading into a buffer that starts 16 bytes into a page (as a
plain `bytearray` or `hashlib.file_digest` does) can make sha256 1.6x slower (0.82 vs 1.35 GB/s);
an anonymous mmap is always page-aligned. Why not mmap the file itself (no copy, about 10%
faster): a file truncated while it is mapped kills the process with SIGBUS, and "the file
changed while it was hashed" must be an error message, not a crash.

Many small files go to worker processes in batches (a list of paths out, a list of plain tuples
back: one pickle per batch, not per file); a large file is hashed in this process, never sent
anywhere. Threads measured slower than one process here (the per-file Python work holds the GIL).
"""

from __future__ import annotations

import errno
import functools
import gc
import hashlib
import mmap
import os
import stat as statmod
from collections.abc import Callable, Generator, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, ParamSpec, Protocol, Self, TypeVar

from envbuild.data.errors import DataError

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor
    from hashlib import _Hash

P = ParamSpec("P")
R = TypeVar("R")

BUFFER_SIZE = 1 << 20
BIG_FILE = 64 << 20  # hashed in this process, its bytes shown on the progress bar as they go
# Fewer files and bytes than this: starting the workers (about 30 ms) costs more than it saves.
PARALLEL_MIN_FILES = 1000
PARALLEL_MIN_BYTES = 128 << 20
BATCH_FILES = 512
BATCH_BYTES = 64 << 20


class Progress(Protocol):
    def start(self, label: str, total_bytes: int, total_files: int) -> None: ...
    def advance(self, nbytes: int, nfiles: int) -> None: ...
    def finish(self) -> None: ...


class NoProgress:
    def start(self, label: str, total_bytes: int, total_files: int) -> None:
        pass

    def advance(self, nbytes: int, nfiles: int) -> None:
        pass

    def finish(self) -> None:
        pass


class FileStat(NamedTuple):
    """What the stat cache compares: an unchanged file keeps all four."""

    size: int
    mtime_ns: int
    ino: int
    mode: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode)

    @property
    def executable(self) -> bool:
        return bool(self.mode & statmod.S_IXUSR)


class FileHash(NamedTuple):
    hexdigest: str
    stat: FileStat


_buffer: mmap.mmap | None = None


def _forget_buffer() -> None:
    global _buffer
    _buffer = None


# A forked child makes its own buffer (see aligned_buffer), without a getpid per file.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_buffer)


def aligned_buffer() -> mmap.mmap:
    """This process's page-aligned read buffer (one per process: workers are single-threaded).

    MAP_PRIVATE, and made again in a forked child: an anonymous mmap is MAP_SHARED by default,
    and worker processes reading into one shared buffer would hash each other's bytes.
    """
    global _buffer
    if _buffer is None:
        _buffer = mmap.mmap(-1, BUFFER_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return _buffer


def new_hash(algorithm: str) -> _Hash:
    """A new hash object: the constructor itself for sha256 and md5 (hashlib.new looks the name
    up each time; 20,000 small files notice)."""
    constructor = _CONSTRUCTORS.get(algorithm)
    return constructor() if constructor is not None else hashlib.new(algorithm)


_CONSTRUCTORS: dict[str, Callable[[], _Hash]] = {"sha256": hashlib.sha256, "md5": hashlib.md5}


def _os_error(exc: OSError, display: str, what: str) -> DataError:
    if isinstance(exc, PermissionError):
        return DataError("permission denied", path=display,
                         hint="give envbuild read access to the file, or leave it out")
    if isinstance(exc, FileNotFoundError):
        return DataError(f"vanished while {what}", path=display,
                         hint="run the command again once nothing writes to the data")
    return DataError(f"cannot read: {exc.strerror or exc}", path=display, hint="")


def hash_file(
    path: str,
    algorithm: str = "sha256",
    *,
    display: str = "",
    on_bytes: Callable[[int], None] | None = None,
    sink: Callable[[memoryview], None] | None = None,
) -> FileHash:
    """Hash one regular file; raise DataError if it changed while it was read.

    `sink` receives every block as it is hashed (the cache stores a file in the same pass).
    """
    display = display or path
    h = new_hash(algorithm)
    try:
        # O_NONBLOCK: a FIFO that slipped past the walk must not hang the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _os_error(exc, display, "hashed") from None
    try:
        before = os.fstat(fd)
        if not statmod.S_ISREG(before.st_mode):
            raise DataError("not a regular file (device, socket or FIFO)", path=display,
                            hint="data refs hold regular files and directories only")
        size = before.st_size
        total = 0
        read_ahead = _blocks_read_ahead(fd, size) if size > BIG_FILE else None
        blocks = read_ahead if read_ahead is not None else _blocks(fd, size)
        try:
            for block in blocks:
                h.update(block)
                if sink is not None:
                    sink(block)
                total += len(block)
                if on_bytes is not None:
                    on_bytes(len(block))
        finally:
            if read_ahead is not None:
                read_ahead.close()  # its thread ends before the fd is closed
        # The inode that was read, not the path (no second path lookup): a file replaced by a
        # rename meanwhile was still read whole and unchanged, and the stat cache records this
        # inode, so the next status sees the new one as a change.
        after = os.fstat(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # the sink's disk is full: the caller (the cache) says where
        raise _os_error(exc, display, "hashed") from None
    finally:
        os.close(fd)
    if total != size or after.st_size != size or after.st_mtime_ns != before.st_mtime_ns:
        raise DataError("changed while it was hashed", path=display,
                        hint="run the command again once nothing writes to the data")
    return FileHash(h.hexdigest(), FileStat(size, before.st_mtime_ns, before.st_ino,
                                            before.st_mode))


def _blocks(fd: int, size: int) -> Iterable[memoryview]:
    """The file's blocks, each valid until the next one is asked for.

    It stops at the size fstat gave (no read to find the end): the stat after the read catches
    a file that grew meanwhile. A file that one read gets whole (most files of a big tree) is
    a 1-tuple, not a generator: 20,000 small files notice.
    """
    buf = aligned_buffer()
    n = os.readv(fd, [buf])
    if n == size:
        return (memoryview(buf)[:n],) if n else ()
    return _more_blocks(fd, size, n)


def _more_blocks(fd: int, size: int, first: int) -> Generator[memoryview, None, None]:
    """`_blocks` after a first read of `first` bytes (still in the buffer) that was not the
    whole file."""
    buf = aligned_buffer()
    view = memoryview(buf)
    n, total = first, 0
    while n:
        total += n
        yield view[:n]
        if total >= size and size:
            return
        n = os.readv(fd, [buf])


def _blocks_read_ahead(fd: int, size: int) -> Generator[memoryview, None, None]:
    """The same blocks, read by a second thread while this one hashes the one before.

    `os.readv` and hashlib both let go of the GIL, so on two CPUs copying out of the page cache
    overlaps the hashing: a 2 GiB file hashed at 1.74 instead of 1.59 GB/s here. Only for big
    files: a thread costs more than it saves on a small one.
    """
    import queue
    import threading

    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # twice the kernel's read-ahead
    free: queue.SimpleQueue[mmap.mmap | None] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[mmap.mmap, int] | BaseException | None] = queue.SimpleQueue()
    for _ in range(3):
        free.put(mmap.mmap(-1, BUFFER_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS))

    def read() -> None:
        total = 0
        try:
            while total < size:
                buf = free.get()
                if buf is None:  # the consumer stopped early
                    return
                n = os.readv(fd, [buf])
                if not n:
                    break
                full.put((buf, n))
                total += n
            full.put(None)
        except BaseException as exc:  # noqa: BLE001 (raised again in the consumer)
            full.put(exc)

    reader = threading.Thread(target=read, name="envbuild-read-ahead", daemon=True)
    reader.start()
    try:
        while (item := full.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            buf, n = item
            yield memoryview(buf)[:n]
            free.put(buf)
    finally:
        free.put(None)
        reader.join()  # before the caller closes the fd the thread reads


def hash_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return hashlib.new(algorithm, data).hexdigest()


# ---- many files --------------------------------------------------------------------------------

Job = tuple[str, str, int]  # (absolute path, display path, size from the walk)
# What a batch sends back per file: (hexdigest, size, mtime_ns, ino, mode), or on the first
# failure ("", message, hint) and nothing after it. Plain tuples: they pickle several times
# faster than NamedTuples, and DataError (keyword-only arguments) does not pickle at all.
Outcome = tuple[str, int, int, int, int] | tuple[str, str, str]


def _storer(store: str | None, link: str) -> Callable[..., FileHash]:
    """How a file enters the cache `store` (None: it is only hashed); `link` as `data add`'s."""
    if store is None:
        return hash_file
    from functools import partial

    from envbuild.data.cache import ObjectCache

    cache = ObjectCache.shared(Path(store))
    if link == "hardlink":
        return cache.store_link
    if link in ("auto", "reflink"):
        return partial(cache.store_reflink, required=link == "reflink")
    return cache.store_file


def _hash_batch(jobs: Sequence[Job], algorithm: str, store: str | None = None,
                link: str = "copy") -> list[Outcome]:
    """Hash (and with `store`, a cache root, also store) each file; stop at the first error."""
    if store is not None and link in ("copy", "auto"):
        from envbuild.data.cache import ObjectCache

        return ObjectCache.shared(Path(store)).store_batch(jobs, algorithm, link)
    hash_one = _storer(store, link)
    out: list[Outcome] = []
    for path, display, _ in jobs:
        try:
            fh = hash_one(path, algorithm, display=display)
        except DataError as exc:
            out.append(("", exc.message, exc.hint))
            break
        out.append((fh.hexdigest, *fh.stat))
    return out


def gc_paused(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn`, run with Python's cyclic garbage collector off (in the worker processes it forks
    meanwhile too), and on again after.

    Why: a scan of 20,000 files makes some 100,000 tuples and lists, none of them in a cycle,
    and the collector walked them about 180 times: 25-30 ms of a 1.1 s `data add` here, in the
    process that also feeds the workers. Reference counting still frees everything as usual.
    """
    @functools.wraps(fn)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()
    return paused


def worker_count() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


class Hasher:
    """Hashes files while they are still being found: `add` each job as a walk meets it, then
    `finish` gives the hashes in the order added. The first bad file raises DataError.

    With `store` (a cache root) each file is also stored in the cache: copied in the same read,
    or after its hash cloned (`link` "auto" or "reflink") or hard-linked ("hardlink") into it.
    Small files go to worker processes in batches as soon as there are enough of them to pay
    for starting the workers, so the workers hash while the walk goes on (on 20,000 files the
    walk is about a tenth of `data add`); files over BIG_FILE are hashed here in `finish`,
    showing their bytes on the progress bar, while the workers take the small ones. Use it as
    a context manager: leaving early (an error in the walk or a file) cancels what is queued.
    """

    def __init__(self, algorithm: str = "sha256", *, store: Path | None = None,
                 link: str = "copy", progress: Progress | None = None,
                 workers: int | None = None) -> None:
        self.algorithm = algorithm
        self.store = str(store) if store is not None else None
        self.link = link
        self.progress = progress or NoProgress()
        self.workers = worker_count() if workers is None else workers
        self.jobs: list[Job] = []
        self.big: list[int] = []
        self.pending: list[int] = []  # small jobs not yet sent to a worker
        self.pending_bytes = 0
        self.small_files = self.small_bytes = 0
        self.pool: ProcessPoolExecutor | None = None
        self.futures: list[tuple[list[int], Future[list[Outcome]]]] = []
        self.results: list[FileHash | None] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def add(self, job: Job) -> None:
        i = len(self.jobs)
        self.jobs.append(job)
        self.results.append(None)
        if job[2] > BIG_FILE:
            self.big.append(i)
            return
        self.pending.append(i)
        self.pending_bytes += job[2]
        self.small_files += 1
        self.small_bytes += job[2]
        if self.pool is None and self.workers > 1 and (
                self.small_files >= PARALLEL_MIN_FILES or self.small_bytes >= PARALLEL_MIN_BYTES):
            self._start_pool()
        while self.pool is not None and (len(self.pending) >= BATCH_FILES
                                         or self.pending_bytes >= BATCH_BYTES):
            self._submit()

    def _start_pool(self) -> None:
        import multiprocessing  # only here: a no-change status never starts a worker
        from concurrent.futures import ProcessPoolExecutor

        # fork: workers start in milliseconds and inherit the imported modules.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)

    def _submit(self) -> None:
        """Send the first pending files, at most BATCH_FILES of them and BATCH_BYTES (at least
        one file), to a worker."""
        assert self.pool is not None
        count, size = 0, 0
        for count, i in enumerate(self.pending[:BATCH_FILES], 1):
            size += self.jobs[i][2]
            if size >= BATCH_BYTES:
                break
        indices, self.pending = self.pending[:count], self.pending[count:]
        self.pending_bytes -= size
        self.futures.append((indices, self.pool.submit(
            _hash_batch, [self.jobs[i] for i in indices], self.algorithm, self.store, self.link)))

    def _take(self, indices: Sequence[int], outcomes: list[Outcome]) -> None:
        nbytes = 0
        for i, outcome in zip(indices, outcomes):
            if not outcome[0]:
                raise DataError(str(outcome[1]), hint=str(outcome[2]))
            hexdigest, size, mtime_ns, ino, mode = outcome  # type: ignore[misc]
            self.results[i] = FileHash(hexdigest, FileStat(size, mtime_ns, ino, mode))
            nbytes += size
        self.progress.advance(nbytes, len(outcomes))

    def finish(self) -> list[FileHash]:
        """Every added file's hash, in the order added (waits for the workers)."""
        while self.pool is not None and self.pending:
            self._submit()
        hash_one = _storer(self.store, self.link)
        for i in self.big:
            job = self.jobs[i]
            self.results[i] = hash_one(job[0], self.algorithm, display=job[1],
                                       on_bytes=lambda n: self.progress.advance(n, 0))
            self.progress.advance(0, 1)
        if self.pool is None:
            for start in range(0, len(self.pending), 64):
                indices = self.pending[start:start + 64]
                self._take(indices, _hash_batch([self.jobs[i] for i in indices],
                                                self.algorithm, self.store, self.link))
            self.pending = []
        for indices, future in self.futures:
            self._take(indices, future.result())
        self.futures = []
        return self.results  # type: ignore[return-value]
