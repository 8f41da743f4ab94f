"""The one way the engine opens a file the user gave it: a regular file, within a size bound.

A FIFO would block ``open()`` forever, ``/dev/zero`` never ends and a directory is not a file;
every reader of user input (images, weights, Keras shards, dataset hashing) goes through
:func:`open_user_file` or :func:`check_user_file`, so each of these is refused with one sentence
instead of hanging or exhausting memory.

The file is opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open descriptor, so a
FIFO swapped in between a check and the open cannot block either. No Qt, no torch.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from resnet_gui.core.errors import ResNetGuiError

__all__ = [
    "REASON_DIRECTORY",
    "REASON_NOT_REGULAR",
    "UserFileError",
    "check_user_file",
    "open_user_file",
    "os_reason",
    "read_user_file",
    "read_user_text",
]

REASON_NO_FILE = "no such file"
REASON_DIRECTORY = "is a directory"
REASON_NOT_REGULAR = "not a regular file (a pipe, a device or a socket)"
REASON_PERMISSION = "permission denied"


# The one system call that opens a user's file (tests replace it to simulate a refusal: root reads
# a file of mode 000 anyway).
_open_descriptor = os.open


class UserFileError(ResNetGuiError):
    """A file the user named is missing, not a regular file, unreadable or over its size bound.

    ``reason`` is the short reason alone (for tables of failures); ``str()`` is the sentence.
    """

    exit_code = 1

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot read '{os.fspath(path)}': {reason}.")


def os_reason(error: OSError) -> str:
    """A short, lower-case reason for an error opening or reading a file."""
    if isinstance(error, (FileNotFoundError, NotADirectoryError)):
        return REASON_NO_FILE
    if isinstance(error, IsADirectoryError):
        return REASON_DIRECTORY
    if isinstance(error, PermissionError):
        return REASON_PERMISSION
    if error.errno == errno.ENAMETOOLONG:
        return "the path is longer than the system allows"
    if error.errno == errno.ELOOP:
        return "a symbolic link loops back on itself"
    if error.strerror:
        return f"cannot read the file ({error.strerror.lower()})"
    return f"cannot read the file ({error})"


def _describe_size(size: int) -> str:
    if size >= 1 << 30:
        return f"{size / (1 << 30):.1f} GB"
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MB"
    return f"{size:,} bytes"


def _check_stat(path: str | os.PathLike[str], st: os.stat_result, max_bytes: int | None) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise UserFileError(path, REASON_DIRECTORY)
    if not stat.S_ISREG(st.st_mode):
        raise UserFileError(path, REASON_NOT_REGULAR)
    if max_bytes is not None and st.st_size > max_bytes:
        raise UserFileError(
            path, f"it is {_describe_size(st.st_size)}, more than the {_describe_size(max_bytes)} expected"
        )


def check_user_file(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> os.stat_result:
    """Stat ``path`` (following links) and refuse anything but a regular file within ``max_bytes``."""
    try:
        st = os.stat(path)
    except OSError as error:
        raise UserFileError(path, os_reason(error)) from None
    _check_stat(path, st, max_bytes)
    return st


@contextlib.contextmanager
def open_user_file(
    path: str | os.PathLike[str], *, max_bytes: int | None = None
) -> Iterator[io.BufferedReader]:
    """Open ``path`` for binary reading, refusing FIFOs, devices, folders and oversized files.

    Raises :class:`UserFileError`; an ``OSError`` while the caller reads still reaches the caller.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = _open_descriptor(path, flags)
    except OSError as error:
        raise UserFileError(path, os_reason(error)) from None
    try:
        _check_stat(path, os.fstat(fd), max_bytes)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def read_user_file(path: str | os.PathLike[str], *, max_bytes: int) -> bytes:
    """The whole content of a regular file of at most ``max_bytes`` (checked, then read bounded)."""
    with open_user_file(path, max_bytes=max_bytes) as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as error:
            raise UserFileError(path, os_reason(error)) from None
    if len(data) > max_bytes:  # the file grew after the check
        raise UserFileError(path, f"it is more than the {_describe_size(max_bytes)} expected")
    return data


def read_user_text(path: str | os.PathLike[str], *, max_bytes: int) -> str:
    """The text of a UTF-8 file of at most ``max_bytes`` (a byte-order mark, as Windows editors
    write, is dropped); a file that is not UTF-8 is a :class:`UserFileError` like any unreadable one."""
    data = read_user_file(path, max_bytes=max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserFileError(path, "it is not UTF-8 text") from None


def file_digest(path: Path) -> str:
    """SHA-256 of a file's content (exact duplicates share it).

    Opened through :func:`open_user_file`, so a FIFO or a link to a
    device in a class folder is refused instead of blocking or hashing forever. Raises
    :class:`UserFileError` (``.reason`` says why).
    """
    digest = hashlib.sha256()
    with open_user_file(path) as handle:
        try:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        except OSError as err:
            raise UserFileError(path, os_reason(err)) from None
    return digest.hexdigest()
