"""Find the image files of a folder: hidden files skipped, symlink loops safe, stable order.

The order is the sorted order of path components, so two runs over the same folder (a run and
its resume, the CLI and the GUI) see the files in the same order.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from resnet_gui.core.errors import ResNetGuiError
from resnet_gui.core.images import IMAGE_EXTENSIONS
from resnet_gui.core.userfiles import os_reason

__all__ = [
    "BatchInputError",
    "describe_found",
    "folder_counts",
    "path_key",
    "scan_folder",
    "scan_inputs",
    "subfolder_of",
]

_FILE_ATTRIBUTE_HIDDEN = 0x2  # Windows' hidden attribute (stat.FILE_ATTRIBUTE_HIDDEN)


class BatchInputError(ResNetGuiError):
    """A folder or file given to a batch run does not exist or cannot be listed."""

    exit_code = 1


def _is_hidden(entry: os.DirEntry[str]) -> bool:
    """Dot files (Unix convention) and, on Windows, files with the hidden attribute."""
    if entry.name.startswith("."):
        return True
    attributes = 0
    if os.name == "nt":
        try:
            attributes = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
        except OSError:
            return False
    return bool(attributes & _FILE_ATTRIBUTE_HIDDEN)


class _Unreachable(Exception):
    """An entry of a listed folder whose details cannot be read (e.g. its path is too long)."""

    def __init__(self, error: OSError) -> None:
        self.error = error


def _entry_kind(entry: os.DirEntry[str]) -> str:
    """``dir``, ``file`` or ``other``, following symlinks; a broken or looping link is a ``file``.

    A link whose target cannot be reached is listed like a file, so the batch gives it a row with
    the reason instead of dropping it silently.
    """
    try:
        mode = entry.stat(follow_symlinks=True).st_mode
    except OSError as error:
        if entry.is_symlink():
            return "file"
        raise _Unreachable(error) from None
    if stat.S_ISDIR(mode):
        return "dir"
    return "file"  # regular files, and FIFOs/devices the loader will refuse with a reason


def scan_folder(
    folder: str | os.PathLike[str],
    recursive: bool = False,
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
    *,
    on_error: Callable[[Path, str], None] | None = None,
) -> list[Path]:
    """The image files of ``folder`` (and of its subfolders when ``recursive``), in a stable order.

    Files are chosen by suffix (case-insensitive), not content: a text file named ``.jpg`` is
    listed, and the batch reports it as a failure. Hidden files and folders are skipped.
    Symlinked folders are followed once: the real path of every visited folder is remembered,
    so a link back to a parent cannot loop. A subfolder that cannot be listed is reported
    through ``on_error(path, reason)`` and skipped. An empty result is not an error here; the
    caller says "no images".

    Raises :class:`BatchInputError` if ``folder`` itself is missing or cannot be listed.
    """
    root = Path(folder)
    suffixes = {suffix.lower() for suffix in extensions}
    if not root.is_dir():
        reason = "is not a folder" if root.exists() else "does not exist"
        raise BatchInputError(f"'{root}' {reason}.")
    found: list[Path] = []
    visited: set[str] = set()
    pending = [root]
    while pending:
        current = pending.pop()
        real = os.path.realpath(current)
        if real in visited:
            continue
        visited.add(real)
        try:
            with os.scandir(current) as entries:
                listing = list(entries)
        except OSError as error:
            if current == root:
                raise BatchInputError(f"Cannot list '{root}': {error.strerror or error}.") from None
            if on_error is not None:
                on_error(current, f"cannot list the folder ({error.strerror or error})")
            continue
        for entry in listing:
            if _is_hidden(entry):
                continue
            path = current / entry.name
            try:
                kind = _entry_kind(entry)
            except _Unreachable as unreachable:
                # Never dropped in silence: e.g. a file whose full path is longer than the system allows.
                if on_error is not None:
                    on_error(path, os_reason(unreachable.error))
                continue
            if kind == "dir":
                if recursive:
                    pending.append(path)
            elif kind == "file" and os.path.splitext(entry.name)[1].lower() in suffixes:
                found.append(path)
    return sorted(found, key=lambda path: path.parts)


def scan_inputs(
    inputs: Iterable[str | os.PathLike[str]],
    recursive: bool = False,
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
    *,
    on_error: Callable[[Path, str], None] | None = None,
) -> list[Path]:
    """Folders are scanned, files are taken as given (whatever their suffix), duplicates dropped.

    For command lines such as ``batch photos/ extra.jpg``. A path that does not exist raises
    :class:`BatchInputError`: it is a typo, not a bad image.
    """
    extensions = tuple(extensions)
    result: list[Path] = []
    seen: set[str] = set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            candidates = scan_folder(path, recursive, extensions, on_error=on_error)
        elif path.exists() or path.is_symlink():
            candidates = [path]
        else:
            raise BatchInputError(f"'{path}' does not exist.")
        for candidate in candidates:
            key = path_key(candidate)
            if key not in seen:
                seen.add(key)
                result.append(candidate)
    return result


def path_key(path: str | os.PathLike[str]) -> str:
    """How two spellings of one file (``./a.jpg``, ``a.jpg``, absolute) are recognised as the same.

    Absolute and normalised, without resolving symlinks (a link is its own entry of the folder).
    """
    return os.path.normcase(os.path.abspath(os.fspath(path)))


TOP_FOLDER = "(this folder)"
_LISTED_FOLDERS = 8


def subfolder_of(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> str:
    """The folder of ``path`` relative to ``root`` (``ants``, ``val/ants``); ``""`` directly in ``root``."""
    try:
        relative = Path(path).parent.relative_to(root)
    except ValueError:
        return Path(path).parent.name
    return "" if str(relative) == "." else relative.as_posix()


def folder_counts(root: str | os.PathLike[str], paths: Iterable[str | os.PathLike[str]]) -> dict[str, int]:
    """How many of ``paths`` are in each sub-folder of ``root`` (``""``: in ``root`` itself), by name."""
    counts: dict[str, int] = {}
    for path in paths:
        folder = subfolder_of(root, path)
        counts[folder] = counts.get(folder, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (item[0] != "", item[0].lower())))


def describe_found(root: str | os.PathLike[str], paths: Iterable[str | os.PathLike[str]]) -> str:
    """What a scan found, for people: ``153 photos in 2 folders: ants 70, bees 83`` (or ``12 photos``)."""
    counts = folder_counts(root, paths)
    total = sum(counts.values())
    photos = f"{total} photo{'s' if total != 1 else ''}"
    if total == 0:
        return "no photos"
    if set(counts) == {""}:
        return photos
    parts = [f"{name or TOP_FOLDER} {count}" for name, count in counts.items()]
    if len(parts) > _LISTED_FOLDERS:
        parts = [*parts[:_LISTED_FOLDERS], f"and {len(parts) - _LISTED_FOLDERS} more"]
    return f"{photos} in {len(counts)} folders: {', '.join(parts)}"
