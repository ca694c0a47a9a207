"""The content-addressed object cache: `<root>/<algorithm>/<ab>/<cdef...>`.

Every object is written to a temp file (created read-only: the open fd still writes), hashed as
it is written, and only given the name of what was read once it is complete, so a reader never
sees a partial or misnamed object. On Linux the temp is nameless (O_TMPFILE in `<root>/tmp/`,
linked in when complete: a crash leaves nothing); elsewhere it is a named file under
`<root>/tmp/<n>/`, renamed into place. Two processes adding the same object at once both write
their own temp; the second finds identical bytes already there (or replaces them). The layout is
DVC's (`.dvc/cache/files/md5/ab/cdef...`), so a DVC cache is read as a fallback for md5 refs;
Git LFS's local objects are read for sha256 ones.

Durability: objects are not fsynced, one by one or together. Measured here, an fsync per object
cost about 0.8 ms (some 16 s for 20,000 small files, where the whole add takes about 2 s), and
one sync before the lock is written waits for every dirty page on the disk, other programs' too
(about 1 s per 70 MB written). What keeps the cache from ever serving a damaged object instead:
every object is verified when it is read (checkout, push, listings: `verified` re-hashes it, and
a mismatch removes it and says so), and an object whose size is not the expected one (what a
crash leaves: a truncated or empty file) counts as absent, so the next `data add` writes it
again. The working files an add read stay where they are, so a crash loses no data, at worst a
cache object, which the next add or pull restores.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import itertools
import mmap
import os
import stat as statmod
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from envbuild.data import LINKS  # noqa: F401 (re-exported)
from envbuild.data.errors import DataError
from envbuild.data.hashing import (
    FileHash,
    FileStat,
    Job,
    Outcome,
    aligned_buffer,
    hash_file,
    new_hash,
)
from envbuild.data.statcache import RACY_NS
from envbuild.errors import IntegrityError

CACHE_ENV = "ENVBUILD_CACHE"
_FICLONE = 0x40049409
Fallback = Callable[[str, str], Path | None]


def default_cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "envbuild"


def dvc_fallback(project: Path) -> Fallback:
    """DVC 3's local cache (`.dvc/cache/files/md5/...`) for md5 objects."""
    root = project / ".dvc" / "cache" / "files"

    def find(algorithm: str, name: str) -> Path | None:
        path = root / algorithm / name[:2] / name[2:]
        return path if algorithm == "md5" and path.is_file() else None

    return find


def lfs_fallback(project: Path) -> Fallback:
    """Git LFS's local objects (`.git/lfs/objects/ab/cd/<oid>`) for sha256 objects."""
    root = project / ".git" / "lfs" / "objects"

    def find(algorithm: str, name: str) -> Path | None:
        path = root / name[:2] / name[2:4] / name
        return path if algorithm == "sha256" and path.is_file() else None

    return find


def _disk_full(exc: OSError, where: Path) -> DataError:
    return DataError(f"disk full while writing ({exc.strerror})", path=str(where),
                     hint="free some space (or point --cache / ENVBUILD_CACHE elsewhere); "
                          "nothing was half-written")


def _write_all(fd: int, block: memoryview) -> None:
    while block:
        n = os.write(fd, block)
        block = block[n:]


def _file_mode(executable: bool) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if executable else 0o666) & ~umask


def _size_is(path: str | Path, size: int | None) -> bool:
    """A regular file there, of `size` bytes when a size is given."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return statmod.S_ISREG(st.st_mode) and (size is None or st.st_size == size)


_shared: dict[tuple[int, str], ObjectCache] = {}
# Cache roots this process found it cannot clone into (from the data it adds): it copies.
_no_reflink: set[str] = set()
# What FICLONE answers when the file systems cannot share extents (not: the file is bad).
_NO_CLONE = frozenset({errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS})


class ObjectCache:
    def __init__(self, root: Path, *, fallbacks: Sequence[Fallback] = ()) -> None:
        self.root = Path(root)
        self.fallbacks = tuple(fallbacks)
        self._base = str(self.root)
        self._made: set[str] = set()  # directories known to exist: no mkdir per object
        self._temps = itertools.count()
        self._temp_prefix = ""

    @classmethod
    def shared(cls, root: Path) -> ObjectCache:
        """One cache object per root and process (a worker stores many batches)."""
        key = (os.getpid(), str(root))
        if key not in _shared:
            _shared[key] = cls(root)
        return _shared[key]

    def path(self, algorithm: str, name: str) -> Path:
        return self.root / algorithm / name[:2] / name[2:]

    def _own(self, algorithm: str, name: str) -> str:
        return f"{self._base}/{algorithm}/{name[:2]}/{name[2:]}"

    def find(self, algorithm: str, name: str, size: int | None = None) -> Path | None:
        """The object's file, ours or a fallback's; with `size`, only one of that size."""
        own = self._own(algorithm, name)
        if _size_is(own, size):
            return Path(own)
        for fallback in self.fallbacks:
            found = fallback(algorithm, name)
            if found is not None and _size_is(found, size):
                return found
        return None

    def has(self, algorithm: str, name: str, size: int | None = None) -> bool:
        return self.find(algorithm, name, size) is not None

    # ---- writing -------------------------------------------------------------------------------

    def disk_full(self, exc: OSError) -> DataError:
        """The error for ENOSPC (or EDQUOT) met while writing into this cache."""
        return _disk_full(exc, self.root)

    def _temp_name(self) -> str:
        """A new name under `<root>/tmp/<pid % 16>/`, made per process.

        Worker processes that create their temps in one directory wait for each other on its
        lock: spread over 16, two workers stored 20,000 objects 15-20% faster here.
        """
        pid = os.getpid()
        if not self._temp_prefix.startswith(f"{self._base}/tmp/{pid % 16}/{pid}-"):  # forked
            directory = f"{self._base}/tmp/{pid % 16}"
            self._mkdir(directory)
            self._temp_prefix = f"{directory}/{pid}-{os.urandom(6).hex()}-"
        return f"{self._temp_prefix}{next(self._temps)}"

    def _mkdir(self, directory: str) -> None:
        if directory not in self._made:
            os.makedirs(directory, exist_ok=True)
            self._made.add(directory)

    def _temp(self, mode: int = 0o444, access: int = os.O_WRONLY) -> tuple[int, str]:
        """A new temp file, read-only from the start (the returned fd writes all the same)."""
        try:
            path = self._temp_name()
            return os.open(path, access | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode), path
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _disk_full(exc, self.root) from None
            raise DataError(f"cannot write to the cache: {exc.strerror}", path=str(self.root),
                            hint="check the cache directory's permissions, or use --cache DIR")\
                from None

    def _nameless_or_temp(self) -> tuple[int, str | None]:
        """A new nameless file in the cache (O_TMPFILE, no name until `_link_in`), where this
        kernel and file system can give it one later; else a named temp (`_temp`).

        Why: a named temp costs a directory entry in `tmp/` and a rename across directories
        (the kernel serializes those per file system); a nameless file is linked in once, and
        a crash leaves nothing behind. Storing 20,000 small files, 5-8% faster here.
        """
        fd = self._nameless()
        return (fd, None) if fd is not None else self._temp()

    def _nameless(self) -> int | None:
        """A new nameless file in `<root>/tmp` (see `_nameless_or_temp`); None where none can
        be made and named later."""
        if _can_flink(self._base):
            try:
                return os.open(f"{self._base}/tmp", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC,
                               0o444)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise _disk_full(exc, self.root) from None
        return None

    def _link_in(self, fd: int, algorithm: str, name: str, size: int) -> None:
        """Give the complete nameless file `fd` the object's name; an object already there of
        the right size stays (another process stored the same bytes), one of another size (a
        crash's leftover) is replaced through a temp name."""
        self._mkdir(f"{self._base}/{algorithm}/{name[:2]}")
        target = self._own(algorithm, name)
        try:
            _flink(fd, target)
        except FileExistsError:
            if _size_is(target, size):
                return
            tmp = self._temp_name()
            _flink(fd, tmp)
            try:
                os.replace(tmp, target)
            finally:
                _unlink(tmp)

    def _commit(self, tmp: str, algorithm: str, name: str) -> None:
        """The rename that makes a complete, read-only temp file the object `name`."""
        self._mkdir(f"{self._base}/{algorithm}/{name[:2]}")
        os.replace(tmp, self._own(algorithm, name))

    def store_file(self, src: str, algorithm: str = "sha256", *, display: str = "",
                   expect: str | None = None,
                   on_bytes: Callable[[int], None] | None = None) -> FileHash:
        """Hash `src` and store it in one pass; the object is named by what was read.

        With `expect`, a different digest raises IntegrityError and stores nothing.
        """
        fd, tmp = self._nameless_or_temp()
        committed = False
        try:
            try:
                fh = hash_file(src, algorithm, display=display or src, on_bytes=on_bytes,
                               sink=lambda block: _write_all(fd, block))
                if expect is not None and fh.hexdigest != expect:
                    raise IntegrityError(f"{display or src}: {algorithm} {fh.hexdigest} is not "
                                         f"the expected {expect}",
                                         hint="the file changed; add it again")
                if tmp is None:
                    self._link_in(fd, algorithm, fh.hexdigest, fh.stat.size)
                elif not _size_is(self._own(algorithm, fh.hexdigest), fh.stat.size):
                    self._commit(tmp, algorithm, fh.hexdigest)
                    committed = True
            finally:
                os.close(fd)
            return fh
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _disk_full(exc, self.root) from None
            raise
        finally:
            if tmp is not None and not committed:
                _unlink(tmp)

    def store_batch(self, jobs: Sequence[Job], algorithm: str, link: str) -> list[Outcome]:
        """Store each small file as `store_file` does (`link` "copy", or "auto" where this
        cache cannot clone); outcomes as hashing's `_hash_batch` gives them, up to the first
        error.

        Why not `store_file` per file: for a file that one read gets whole (most files of a
        big tree), `_copy_small` does the same reads, checks and writes inline, without the
        layers of `store_file` and `hash_file` around them: per file within a few
        microseconds of a bare loop of the same syscalls (6,000 files, one process), a 20,000
        file add 2% faster here. Whatever it does not handle itself (a file that is not
        regular, larger than one read, unreadable or changed while it was read; a cache
        without nameless files; "auto" before it has found out whether this cache clones)
        goes the long way, which also names what went wrong.
        """
        out: list[Outcome] = []
        buf = aligned_buffer()
        view = memoryview(buf)
        long_way = self.store_file if link == "copy" else self.store_reflink
        for path, display, _ in jobs:
            try:
                row = None
                if link == "copy" or self._base in _no_reflink:
                    row = self._copy_small(path, algorithm, buf, view)
                if row is None:
                    fh = long_way(path, algorithm, display=display)
                    row = (fh.hexdigest, *fh.stat)
            except DataError as exc:
                out.append(("", exc.message, exc.hint))
                break
            out.append(row)
        return out

    def _copy_small(self, src: str, algorithm: str, buf: mmap.mmap,
                    view: memoryview) -> Outcome | None:
        """`store_file` for a regular file that one read into `buf` gets whole, unchanged;
        None, having stored nothing, for any other file or where no nameless file can be made.
        """
        tmp = self._nameless()
        if tmp is None:
            return None
        try:
            st = _read_whole(src, buf)
            if st is None:
                return None
            block = view[:st.st_size]
            h = new_hash(algorithm)
            h.update(block)
            hexdigest = h.hexdigest()
            _write_all(tmp, block)
            self._link_in(tmp, algorithm, hexdigest, st.st_size)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _disk_full(exc, self.root) from None
            raise
        finally:
            os.close(tmp)
        return (hexdigest, st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode)

    def store_link(self, src: str, algorithm: str = "sha256", *, display: str = "",
                   on_bytes: Callable[[int], None] | None = None) -> FileHash:
        """Hash `src`, then hard-link it into the cache instead of copying (`add --link hardlink`).

        The object and the working file are then one inode: both become read-only (write bits
        off, as DVC's hardlink mode does), and an edit in place would change the object too
        (it is verified on every read, so it would be refused, not used). No temp name: the
        link itself makes the complete file appear under the object's name at once; a file
        that changed between the hash and the link is unlinked again and copied instead (as
        across file systems), so the name never keeps bytes other than its own.
        """
        fh = hash_file(src, algorithm, display=display or src, on_bytes=on_bytes)
        target = self._own(algorithm, fh.hexdigest)
        if _size_is(target, fh.stat.size):
            return fh
        try:
            os.chmod(src, fh.stat.mode & 0o555)  # read-only before it is the object
            try:
                self._mkdir(f"{self._base}/{algorithm}/{fh.hexdigest[:2]}")
                os.link(src, target)
            except OSError:
                os.chmod(src, fh.stat.mode)  # not linked: the working file stays as it was
                raise
            st = os.lstat(target)
            if (st.st_ino, st.st_size, st.st_mtime_ns) != (fh.stat.ino, fh.stat.size,
                                                            fh.stat.mtime_ns):
                _unlink(target)
                if st.st_ino == fh.stat.ino:  # edited in place: give it its mode back
                    os.chmod(src, fh.stat.mode)
                raise OSError(errno.ESTALE, "changed since it was hashed")
        except FileExistsError:
            return fh  # another process stored it meanwhile (its bytes are checked on read)
        except OSError:
            return self.store_file(src, algorithm, display=display, expect=fh.hexdigest)
        # The working file is that inode: its new mode is what the stat cache must see.
        return FileHash(fh.hexdigest, FileStat(st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode))

    def store_reflink(self, src: str, algorithm: str = "sha256", *, display: str = "",
                      on_bytes: Callable[[int], None] | None = None,
                      required: bool = False) -> FileHash:
        """Hash `src`, then clone it into the cache (FICLONE: shared extents, copy-on-write).

        The safe zero-copy mode (`add --link auto`, the default): unlike a hard link, the
        working file stays writable and a later edit does not touch the object. Where the file
        system cannot clone (ext4, or the cache on another file system), the file is copied
        instead and this process stops trying for that cache; with `required`
        (`--link reflink`) that is an error. A file that changed between its hash and its clone
        is caught by the stat after the clone, and copied (its bytes checked against the hash).
        """
        if self._base in _no_reflink and not required:
            # Known not to clone here (ext4, ...): hash and copy in one read, as `copy` does,
            # not a hash and then a second read for the copy.
            return self.store_file(src, algorithm, display=display, on_bytes=on_bytes)
        fh = hash_file(src, algorithm, display=display or src, on_bytes=on_bytes)
        if _size_is(self._own(algorithm, fh.hexdigest), fh.stat.size):
            return fh
        if self._base in _no_reflink:
            return self._copy_instead(src, algorithm, display, fh, required)
        # A named temp, not a nameless one as for copies: on XFS, O_TMPFILE and linkat cost
        # more than create and rename (20,000 clones: 1.71 vs 1.52 s). Readable: a racy file's
        # clone is read back below.
        fd, tmp = self._temp(access=os.O_RDWR)
        committed = False
        try:
            try:
                source = os.open(src, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                try:
                    fcntl.ioctl(fd, _FICLONE, source)
                    after = os.fstat(source)
                finally:
                    os.close(source)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise _disk_full(exc, self.root) from None
                if exc.errno in _NO_CLONE:
                    _no_reflink.add(self._base)
                    return self._copy_instead(src, algorithm, display, fh, required)
                if not required:  # auto: a file that will not clone (EPERM, ...) is copied
                    return self.store_file(src, algorithm, display=display, expect=fh.hexdigest)
                raise DataError(f"cannot clone into the cache: {exc.strerror}",
                                path=display or src, hint="try --link auto or copy") from None
            if FileStat.of(after) != fh.stat:  # written to since it was hashed
                return self.store_file(src, algorithm, display=display, expect=fh.hexdigest)
            if time.time_ns() - after.st_mtime_ns < RACY_NS and (
                    _digest_of_fd(fd, algorithm) != fh.hexdigest):
                # mtime ticks coarsely: a write just after the hash may have kept it. Only a
                # file written in the last moments is read again (as the stat cache does).
                return self.store_file(src, algorithm, display=display, expect=fh.hexdigest)
            self._commit(tmp, algorithm, fh.hexdigest)
            committed = True
            return fh
        finally:
            os.close(fd)
            if not committed:
                _unlink(tmp)

    def _copy_instead(self, src: str, algorithm: str, display: str, fh: FileHash,
                      required: bool) -> FileHash:
        if required:
            raise DataError("the file system cannot clone files into the cache (no reflinks)",
                            path=display or src,
                            hint="use --link auto or copy, or put the cache (--cache) on the "
                                 "data's file system if that one is btrfs or xfs")
        return self.store_file(src, algorithm, display=display, expect=fh.hexdigest)

    def store_bytes(self, data: bytes, algorithm: str, name: str) -> None:
        if _size_is(self._own(algorithm, name), len(data)):
            return
        fd, tmp = self._temp()
        try:
            try:
                _write_all(fd, memoryview(data))
            finally:
                os.close(fd)
            self._commit(tmp, algorithm, name)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _disk_full(exc, self.root) from None
            raise
        finally:
            _unlink(tmp)

    def adopt(self, tmp: Path, algorithm: str, name: str, *, what: str) -> None:
        """Move a downloaded temp file into the cache once its bytes match `name`.

        A mismatch removes the temp and raises IntegrityError naming `what` (the remote object).
        """
        try:
            actual = object_digest(tmp, algorithm)
            if actual != _hex_of(name):
                raise IntegrityError(
                    f"{what} is corrupt: its {algorithm} is {actual}, not {_hex_of(name)}",
                    hint="it was not used; repair the remote (push from a good copy)")
            os.chmod(tmp, 0o444)
            self._commit(str(tmp), algorithm, name)
        finally:
            tmp.unlink(missing_ok=True)

    def temp_for_download(self) -> Path:
        """A writable temp file for a download; `adopt` makes it read-only once verified."""
        fd, path = self._temp(0o644)
        os.close(fd)
        return Path(path)

    # ---- reading -------------------------------------------------------------------------------

    def verified(self, algorithm: str, name: str) -> Path:
        """The object's path, after checking its bytes; a corrupt object of our own is removed."""
        found = self._present(algorithm, name)
        self._refuse_if_corrupt(found, algorithm, name, object_digest(found, algorithm))
        return found

    def read_verified(self, algorithm: str, name: str) -> bytes:
        return self.verified(algorithm, name).read_bytes()

    def materialize(self, algorithm: str, name: str, dest: Path, *, executable: bool,
                    link: str = "auto") -> str:
        """Write the object to `dest` atomically (temp beside it, rename); returns how.

        reflink clones the object and then hashes the clone (one read, as a copy's), so a
        corrupt object is never left behind in the working tree; where the file systems cannot
        clone, auto copies (hashing the bytes as it writes them) and reflink refuses. hardlink
        verifies the object first; it shares the read-only cache object, so it is used only when
        asked for and never for an executable file (one object may back both modes).
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.envbuild-{os.urandom(6).hex()}"
        try:
            how = "copy"
            if link == "hardlink" and not executable:
                os.link(self.verified(algorithm, name), tmp)
                how = "hardlink"
            elif link in ("auto", "reflink") and self._clone_verified(algorithm, name, tmp):
                how = "reflink"
            elif link == "reflink":
                raise DataError("the file system cannot clone the cache's objects here "
                                "(no reflinks)", path=str(dest),
                                hint="use --link auto or copy (the files before it in the "
                                     "listing were restored)")
            else:
                self._copy_verified(algorithm, name, tmp)
            if how != "hardlink":
                os.chmod(tmp, _file_mode(executable))
            os.replace(tmp, dest)
            return how
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _disk_full(exc, dest) from None
            raise DataError(f"cannot write: {exc.strerror}", path=str(dest), hint="") from None
        finally:
            tmp.unlink(missing_ok=True)

    def _clone_verified(self, algorithm: str, name: str, tmp: Path) -> bool:
        """Clone the object to `tmp` and check the clone's bytes; False where none can be made."""
        src = self._present(algorithm, name)
        if not _clone(src, tmp):
            return False
        self._refuse_if_corrupt(src, algorithm, name, object_digest(tmp, algorithm))
        return True

    def require_clone(self, algorithm: str, name: str, dest: Path) -> None:
        """Raise DataError unless the object can be cloned to where `dest` will be written.

        `checkout --link reflink` asks before it writes anything: a refusal after some files
        were already restored would leave a half-done checkout.
        """
        where = dest.parent
        while not where.is_dir():
            where = where.parent
        src = self.find(algorithm, name)
        if src is None:
            return  # the checkout's own check names the missing objects
        probe = where / f".envbuild-clone-probe-{os.urandom(6).hex()}"
        try:
            if not _clone(src, probe):
                raise DataError("the file system cannot clone the cache's objects here "
                                "(no reflinks)", path=str(where),
                                hint="use --link auto (clone where possible, else copy) or "
                                     "--link copy; nothing was changed")
        finally:
            probe.unlink(missing_ok=True)

    def _drop_corrupt(self, found: Path, algorithm: str, name: str) -> None:
        """Remove a corrupt object, if it is our own (a fallback cache is not ours to edit)."""
        if found == self.path(algorithm, name):
            try:
                found.unlink()
            except OSError:
                pass  # a read-only shared cache: every later read re-checks it all the same

    def _copy_verified(self, algorithm: str, name: str, tmp: Path) -> None:
        src = self._present(algorithm, name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            fh = hash_file(str(src), algorithm, sink=lambda block: _write_all(fd, block))
        finally:
            os.close(fd)
        self._refuse_if_corrupt(src, algorithm, name, fh.hexdigest)

    def _present(self, algorithm: str, name: str) -> Path:
        """The object's file (ours or a fallback's); DataError when the cache lacks it."""
        found = self.find(algorithm, name)
        if found is None:
            raise DataError(f"not in the cache ({algorithm}:{name})", path=str(self.root),
                            hint="run `envbuild data pull` to fetch it from the remote")
        return found

    def _refuse_if_corrupt(self, found: Path, algorithm: str, name: str, actual: str) -> None:
        """`actual` is the digest of `found`'s bytes: unless it is `name`'s, remove the object
        (ours only) and raise IntegrityError."""
        if actual != _hex_of(name):
            self._drop_corrupt(found, algorithm, name)
            raise IntegrityError(
                f"corrupt cache object {found}: its {algorithm} is {actual}",
                hint="it was removed; run `envbuild data pull` (or add the data again)")


_AT_FDCWD, _AT_EMPTY_PATH = -100, 0x1000
_flinks: dict[str, bool] = {}  # per cache root: can this process name nameless files there?


@functools.cache
def _linkat() -> Callable[..., int]:
    import ctypes

    linkat = ctypes.CDLL(None, use_errno=True).linkat
    linkat.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
    return linkat


def _flink(fd: int, path: str) -> None:
    """Give the open file `fd` the name `path`: linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH).

    Python's os.link cannot (it has no AT_EMPTY_PATH), and linking /proc/self/fd/N instead
    answered EXDEV on these machines.
    """
    if _linkat()(fd, b"", _AT_FDCWD, os.fsencode(path), _AT_EMPTY_PATH) != 0:
        import ctypes

        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), path)


def _can_flink(base: str) -> bool:
    """Whether nameless files can be made in `base/tmp` and named: Linux with O_TMPFILE on
    that file system, and a kernel that lets their owner link them (6.10+, or root); tried once
    per cache root and process with an empty file."""
    if base not in _flinks:
        _flinks[base] = False
        if hasattr(os, "O_TMPFILE") and sys.platform == "linux":
            probe = f"{base}/tmp/flink-probe-{os.getpid()}-{os.urandom(6).hex()}"
            try:
                os.makedirs(f"{base}/tmp", exist_ok=True)
                fd = os.open(f"{base}/tmp", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o444)
                try:
                    _flink(fd, probe)
                    _flinks[base] = True
                finally:
                    os.close(fd)
                    _unlink(probe)
            except (OSError, AttributeError):
                pass
    return _flinks[base]


def _read_whole(src: str, buf: mmap.mmap) -> os.stat_result | None:
    """Read the regular file `src` into `buf` with one read; its stat from before the read if
    that got it whole and it did not change meanwhile (fstat before and after, as `hash_file`
    checks), else None (then `hash_file` reads it again and says what is wrong)."""
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        before = os.fstat(fd)
        if before.st_size > len(buf) or not statmod.S_ISREG(before.st_mode):
            return None
        n = os.readv(fd, [buf])
        after = os.fstat(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    unchanged = (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    return before if n == before.st_size and unchanged else None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _hex_of(name: str) -> str:
    return name.removesuffix(".dir")


def object_digest(path: Path, algorithm: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _digest_of_fd(fd, algorithm)
    finally:
        os.close(fd)


def _digest_of_fd(fd: int, algorithm: str) -> str:
    """The digest of the whole file open at `fd` (read from its start, whatever its offset)."""
    h = new_hash(algorithm)
    buf = aligned_buffer()
    view = memoryview(buf)
    offset = 0
    while n := os.preadv(fd, [buf], offset):
        h.update(view[:n])
        offset += n
    return h.hexdigest()


def _clone(src: Path, dest: Path) -> bool:
    """A copy-on-write clone of `src` at `dest` (FICLONE); False where the file systems can't."""
    with open(src, "rb") as s, open(dest, "wb") as d:
        try:
            fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())
        except OSError as exc:
            if exc.errno in _NO_CLONE:
                return False
            raise
    return True
