"""The user's own models: the fine-tuned bundles in the app's data folder and those opened elsewhere.

A bundle is a ``.safetensors`` file written by this app (``format: resnet-gui-weights/1`` in its
header), with a ``.json`` sidecar beside it and, while or after training, a resumable
``NAME.checkpoint.safetensors``. This module lists them (reading only the header, or the sidecar),
remembers the ones the user opened from other folders, and renames or deletes a bundle together
with its companion files. Nothing here imports torch or Qt: the listing is cheap and testable alone.

Deleting is final (there is no portable "move to the trash"): a caller shows
:func:`companion_files` to the user and asks before calling :func:`delete_bundle`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_gui.core import paths
from resnet_gui.core.atomic import atomic_path, write_text_atomic
from resnet_gui.core.errors import OutputError, ResNetGuiError
from resnet_gui.core.formats import BUNDLE_FORMAT

__all__ = [
    "BUNDLE_FORMAT",
    "LibraryEntry",
    "LibraryError",
    "companion_files",
    "delete_bundle",
    "forget",
    "is_bundle",
    "list_bundles",
    "models_dir",
    "read_entry",
    "remember",
    "remembered_file",
    "rename_bundle",
]

CHECKPOINT_SUFFIX = ".checkpoint.safetensors"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on a header
_FORBIDDEN_IN_NAMES = set('/\\:*?"<>|')


class LibraryError(ResNetGuiError):
    """A model of the library cannot be renamed or deleted (the sentence says why)."""


def models_dir() -> Path:
    """Where the app saves fine-tuned models (not created here)."""
    return paths.data_dir() / "models"


def remembered_file() -> Path:
    """The list of bundles the user opened from other folders (JSON: a list of paths)."""
    return paths.data_dir() / "opened-models.json"


@dataclass(frozen=True)
class LibraryEntry:
    """One of the user's models, as the model picker and the Manage Models dialog show it."""

    path: Path
    name: str  # the file's name without .safetensors: what a rename changes
    categories: tuple[str, ...]
    date: str  # ISO date-time of training, or "" when not recorded
    architecture: str = ""
    in_data_folder: bool = True
    files: tuple[Path, ...] = ()  # the bundle, its sidecar and checkpoint that exist (what a delete removes)

    @property
    def day(self) -> str:
        """The training day (``2025-05-01``), or ``""``."""
        return self.date[:10]

    @property
    def classes_text(self) -> str:
        """``3 classes: ant, bee, cat`` (at most 4 named)."""
        names = list(self.categories)
        shown = ", ".join(names[:4]) + (f", … ({len(names) - 4} more)" if len(names) > 4 else "")
        count = f"{len(names)} class{'es' if len(names) != 1 else ''}"
        return f"{count}: {shown}" if names else "classes not recorded"

    @property
    def summary(self) -> str:
        """``3 classes: ant, bee, cat · 2025-05-01``."""
        return self.classes_text + (f" · {self.day}" if self.day else "")


def checkpoint_of(bundle: Path) -> Path:
    return bundle.with_name(f"{bundle.stem}{CHECKPOINT_SUFFIX}")


def sidecar_of(bundle: Path) -> Path:
    return bundle.with_suffix(".json")


def companion_files(bundle: str | os.PathLike[str]) -> list[Path]:
    """The files that make up ``bundle`` and exist: itself, its ``.json`` sidecar, its checkpoint."""
    bundle = Path(bundle)
    return [path for path in (bundle, sidecar_of(bundle), checkpoint_of(bundle)) if path.is_file()]


def _header_metadata(path: Path) -> dict[str, str] | None:
    """The ``__metadata__`` of a safetensors header, read without loading any tensor; None if unreadable."""
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) != 8:
                return None
            (length,) = struct.unpack("<Q", prefix)
            if length <= 1 or length > _MAX_HEADER:
                return None
            header = json.loads(handle.read(length))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return dict(metadata) if isinstance(metadata, dict) else {}


def _sidecar_metadata(bundle: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(sidecar_of(bundle).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _categories(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return ()
    return tuple(str(name) for name in value) if isinstance(value, list) else ()


def read_entry(path: str | os.PathLike[str]) -> LibraryEntry | None:
    """The entry of a bundle written by this app (header first, else its sidecar); None for anything else."""
    path = Path(path)
    if path.name.endswith(CHECKPOINT_SUFFIX) or path.suffix.lower() != ".safetensors":
        return None
    metadata: dict[str, Any] | None = _header_metadata(path)
    if not metadata or metadata.get("format") != BUNDLE_FORMAT:
        metadata = _sidecar_metadata(path) if path.is_file() else None
        if not metadata or metadata.get("format") != BUNDLE_FORMAT:
            return None
    elif not metadata.get("date") or not metadata.get("categories"):
        sidecar = _sidecar_metadata(path) or {}  # what the header lacks, the sidecar may have
        metadata = {**{k: v for k, v in sidecar.items() if v}, **{k: v for k, v in metadata.items() if v}}
    return LibraryEntry(
        path=path,
        name=path.stem,
        categories=_categories(metadata.get("categories")),
        date=str(metadata.get("date", "")),
        architecture=str(metadata.get("architecture", "")),
        in_data_folder=_inside(path, models_dir()),
        files=tuple(companion_files(path)),
    )


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a model fine-tuned by this app."""
    return read_entry(path) is not None


def _inside(path: Path, folder: Path) -> bool:
    try:
        return os.path.abspath(path.parent) == os.path.abspath(folder)
    except (OSError, ValueError):
        return False


def _read_remembered() -> list[Path]:
    try:
        data = json.loads(remembered_file().read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    return [Path(item) for item in data if isinstance(item, str)] if isinstance(data, list) else []


def _write_remembered(items: list[Path]) -> None:
    target = remembered_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps([str(item) for item in items], indent=1) + "\n", encoding="utf-8")


def _key(path: Path) -> str:
    return os.path.normcase(os.path.abspath(path))


def remember(path: str | os.PathLike[str]) -> bool:
    """Remember a bundle the user opened from another folder; True when it was added.

    Bundles of the data folder are listed anyway; anything that is not a bundle is not remembered.
    """
    path = Path(os.path.abspath(path))
    if _inside(path, models_dir()) or not is_bundle(path):
        return False
    known = _read_remembered()
    if _key(path) in {_key(item) for item in known}:
        return False
    _write_remembered([*known, path])
    return True


def forget(path: str | os.PathLike[str]) -> None:
    """Drop ``path`` from the remembered bundles (the file itself is not touched)."""
    known = _read_remembered()
    kept = [item for item in known if _key(item) != _key(Path(path))]
    if len(kept) != len(known):
        _write_remembered(kept)


def list_bundles() -> list[LibraryEntry]:
    """Every bundle of the data folder's ``models`` folder and every remembered one that still exists.

    Newest first (by training date, then name). A remembered file that is gone or is no longer a
    bundle is left out (and stays remembered, in case its disk comes back).
    """
    candidates: list[Path] = []
    folder = models_dir()
    with contextlib.suppress(OSError):
        candidates.extend(sorted(p for p in folder.iterdir() if p.suffix.lower() == ".safetensors"))
    candidates.extend(_read_remembered())
    entries: list[LibraryEntry] = []
    seen: set[str] = set()
    for path in candidates:
        key = _key(path)
        if key in seen:
            continue
        seen.add(key)
        entry = read_entry(path) if path.is_file() else None
        if entry is not None:
            entries.append(entry)
    entries.sort(key=lambda entry: entry.name.lower())
    entries.sort(key=lambda entry: entry.date, reverse=True)
    return entries


def check_new_name(bundle: Path, new_name: str) -> str:
    """The cleaned new name of ``bundle``, or :class:`LibraryError` saying why it cannot be used."""
    name = new_name.strip()
    if name.lower().endswith(".safetensors"):
        name = name[: -len(".safetensors")].strip()
    if not name or name in (".", ".."):
        raise LibraryError("Type a name for the model.")
    bad = sorted(set(name) & _FORBIDDEN_IN_NAMES)
    if bad or name.startswith("."):
        shown = " ".join(bad) if bad else "a dot at the start"
        raise LibraryError(f"A model's name cannot contain {shown}; choose another name.")
    if name.endswith(".checkpoint"):
        raise LibraryError("A model's name cannot end with “.checkpoint”; choose another name.")
    return name


def rename_bundle(bundle: str | os.PathLike[str], new_name: str) -> Path:
    """Rename ``bundle`` and its sidecar and checkpoint together, in their folder; the new bundle path.

    The name written inside the bundle (its header's ``name``, which the app shows once the model
    is loaded) and its sidecar's change too. Nothing is overwritten: if any of the new names is
    taken, nothing is renamed. Should a rename fail halfway (the disk), the files already renamed
    are put back, under their old names and with their old contents.
    """
    bundle = Path(bundle)
    if not bundle.is_file():
        raise LibraryError(f"The model '{bundle.name}' is no longer in {bundle.parent}.")
    name = check_new_name(bundle, new_name)
    target = bundle.with_name(f"{name}.safetensors")
    if target.name == bundle.name:
        return bundle
    moves = [(source, _renamed(source, bundle, target)) for source in companion_files(bundle)]
    case_only = _key(target) == _key(bundle)  # "Ants" -> "ants" on a case-insensitive disk
    taken = [new for _, new in moves if new.exists() and not case_only]
    if taken:
        raise LibraryError(
            f"There is already a model called “{name}” ({taken[0].name}); choose another name."
        )
    done: list[tuple[Path, Path]] = []
    try:
        for source, new in moves:
            os.rename(source, new)
            done.append((source, new))
        _write_name(target, name)
    except (OSError, OutputError) as error:
        for source, new in reversed(done):
            with contextlib.suppress(OSError):
                os.rename(new, source)
        if isinstance(error, OutputError):  # "Cannot write 'X': the disk is full."
            detail = str(error)
            raise LibraryError(f"Cannot rename '{bundle.name}': {detail[:1].lower()}{detail[1:]}") from None
        raise LibraryError(f"Cannot rename '{bundle.name}': {error.strerror or error}.") from None
    known = _read_remembered()
    if _key(bundle) in {_key(item) for item in known}:
        _write_remembered([target if _key(item) == _key(bundle) else item for item in known])
    return target


def _write_name(bundle: Path, name: str) -> None:
    """Set ``name`` in the bundle's header and sidecar, each rewritten atomically (a failure leaves
    the old file). The tensors are copied byte for byte: their offsets count from the header's end."""
    with open(bundle, "rb") as source:
        prefix = source.read(8)
        (length,) = struct.unpack("<Q", prefix) if len(prefix) == 8 else (0,)
        header = json.loads(source.read(length)) if 1 < length <= _MAX_HEADER else None
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__"), dict):
        raise OSError(f"'{bundle.name}' has no readable header")
    if header["__metadata__"].get("name") != name:
        header["__metadata__"]["name"] = name
        encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
        encoded += b" " * (-len(encoded) % 8)  # safetensors keeps the data 8-byte aligned
        with atomic_path(bundle) as tmp, open(bundle, "rb") as source, open(tmp, "wb") as out:
            source.seek(8 + length)
            out.write(struct.pack("<Q", len(encoded)))
            out.write(encoded)
            shutil.copyfileobj(source, out, 1 << 20)
    sidecar = _sidecar_metadata(bundle)
    if sidecar is not None and sidecar.get("name") != name:
        write_text_atomic(sidecar_of(bundle), json.dumps({**sidecar, "name": name}, indent=2) + "\n")


def _renamed(source: Path, bundle: Path, target: Path) -> Path:
    if source == bundle:
        return target
    if source == sidecar_of(bundle):
        return sidecar_of(target)
    return checkpoint_of(target)


def delete_bundle(bundle: str | os.PathLike[str]) -> list[Path]:
    """Delete ``bundle`` with its sidecar and checkpoint (ask the user first); the files removed.

    A file that cannot be removed stops the deletion with :class:`LibraryError`, naming it; the
    bundle itself goes last, so a model whose deletion failed is still listed and usable.
    """
    bundle = Path(bundle)
    files = companion_files(bundle)
    removed: list[Path] = []
    for path in sorted(files, key=lambda path: path == bundle):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise LibraryError(f"Cannot delete '{path}': {error.strerror or error}.") from None
        removed.append(path)
    forget(bundle)
    return removed
