"""Atomic file writes: a reader never sees a half-written file, a crash leaves none.

The data is written to a temporary file beside the destination, flushed to the disk
(``fsync``), renamed over the destination, and the folder's entry is flushed too, as SQLite and
git do: after a power cut the destination holds either its old content or the new, never an
empty file. Any failure (a full disk, a read-only folder, a destination that is a folder)
removes the temporary file and raises :class:`~resnet_gui.core.errors.OutputError` with one
sentence; the destination is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from resnet_gui.core.errors import OutputError

__all__ = ["atomic_path", "fsync_directory", "output_reason", "write_bytes_atomic", "write_text_atomic"]


def output_reason(error: OSError) -> str:
    """A short reason, for people, why a file could not be written."""
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EFBIG: "the file would be larger than the system allows",
        errno.EROFS: "the disk is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EISDIR: "it is a folder",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EEXIST: "a part of the path is a file, not a folder",
        errno.ENAMETOOLONG: "the name is longer than the system allows",
        errno.ENOENT: "the folder does not exist",
    }
    if error.errno in reasons:
        return reasons[error.errno]
    return (error.strerror or str(error)).lower()


def fsync_directory(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename into it) to the disk; a no-op where folders cannot be opened."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself is still atomic
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``destination``; rename it over ``destination`` on success.

    The temporary file lives in the same folder so the final ``os.replace`` is atomic. On any
    exception the temporary file is removed and ``destination`` is left as it was; an ``OSError``
    (raised here or by the caller's write) becomes :class:`OutputError`.
    """
    destination = Path(destination)
    if destination.is_dir():
        raise OutputError(f"Cannot write '{destination}': it is a folder; give a file name inside it.")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{destination.name[:100]}.", suffix=".partial", dir=destination.parent
        )
        os.close(fd)
    except OSError as error:
        raise OutputError(f"Cannot write '{destination}': {output_reason(error)}.") from None
    tmp_path = Path(tmp_name)
    # mkstemp creates 0600; give the final file the permissions a plain open() would. Done again
    # after the caller's write, since some writers (safetensors) re-create the file.
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~umask)
        _fsync_file(tmp_path)
        os.replace(tmp_path, destination)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(error, OSError):
            raise OutputError(f"Cannot write '{destination}': {output_reason(error)}.") from None
        raise
    fsync_directory(destination.parent)


def write_bytes_atomic(destination: str | Path, data: bytes) -> None:
    """Write ``data`` to ``destination`` atomically."""
    with atomic_path(destination) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(destination: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``destination`` atomically."""
    write_bytes_atomic(destination, text.encode("utf-8"))
