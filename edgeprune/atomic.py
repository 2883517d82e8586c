"""Atomic file writes (temp file in the same directory, fsync, rename, fsync of the directory): a reader
never sees half a file, and a file that is in place survives a power cut.

Every file of a run directory goes through here: :func:`write_bytes_atomic` / :func:`write_text_atomic`
for data edgeprune holds in memory, :func:`atomic_output` for a file a third-party function writes
itself given only a path (ONNX Runtime's quantizer, AOTInductor's packager). A killed process can
leave a hidden temporary (``.NAME.*.tmp``) beside the file, never a half-written file under its name.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_dir(path: str | Path) -> None:
    """Flush a directory's entries (a rename or a new file in it) to disk. A file system that cannot
    fsync a directory (``EINVAL``, ``EBADF``, ...) is left as it is: there is nothing more to do there."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP, errno.EROFS):
            raise
    finally:
        os.close(fd)


def fsync_file(path: str | Path) -> None:
    """Flush a file's bytes to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: str | Path) -> Path:
    """``mkdir -p path``, with each directory it creates made durable (its parent fsync'ed)."""
    path = Path(path)
    missing: list[Path] = []
    d = path
    while not d.exists() and d != d.parent:
        missing.append(d)
        d = d.parent
    path.mkdir(parents=True, exist_ok=True)
    for d in reversed(missing):
        fsync_dir(d.parent)
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably; parent directories are created."""
    path = Path(path)
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary path for a writer that only takes a path; the file it writes replaces ``path``
    atomically when the ``with`` block ends without an exception.

    The temporary path has ``path``'s own name (some writers check the extension), inside a hidden
    directory ``.NAME.*.tmp`` beside ``path`` (the same file system, so the final rename is atomic).
    On success the file is fsync'ed, renamed over ``path`` and the directory fsync'ed; on an exception
    — or when the writer produced no file (:class:`FileNotFoundError`) — ``path`` is left as it was.
    Either way the hidden directory, with anything else the writer put there, is removed.
    """
    path = Path(path)
    make_dirs(path.parent)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    tmp = staging / path.name
    try:
        yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(errno.ENOENT, f"the writer of {path} produced no file", str(tmp))
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
