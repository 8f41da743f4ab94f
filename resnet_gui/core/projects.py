"""Labelling projects: a user makes their classes in the app instead of arranging folders first.

A project is a folder in the app's data folder (:func:`projects_dir`) that **is** a
one-folder-per-class dataset, so the health check, training and review take ``project.root`` as
they take any photo folder::

    <projects>/Birds/
        robin/IMG_0001.jpg …          one folder per class: the photos, copied in
        sparrow/…
        .project/manifest.json         where every photo came from (hidden: never a class)
        .project/trash/<n>/…           what Delete and Merge took away, so they can be undone

Photos are always **copied** in, never moved: the user's files stay where they were. The manifest
records, for each photo, its class, its source (the original path, ``"camera"`` or ``"pasted"``),
when it was added and its SHA-256, so an exact copy of a photo already in the project is skipped.
Class folders on disk are the truth (a photo dropped in with a file manager still counts); the
manifest only describes them. Every change (rename, merge, delete, move) can be undone with
:meth:`LabellingProject.undo_last`, also after the project was closed and reopened.

All writes are atomic (a photo is written to a hidden temporary file, flushed, then linked to a
free name; the manifest via :mod:`.atomic`). Two :class:`LabellingProject` objects on the same
folder in one process (the wizard and the live camera's *Capture to class…*) share one lock and
re-read the manifest before each change, so neither loses the other's photos. No Qt, no torch.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from resnet_gui.core import paths
from resnet_gui.core.atomic import fsync_directory, write_text_atomic
from resnet_gui.core.corrections import LEFT_OUT_FOLDER
from resnet_gui.core.errors import CancelCheck, Cancelled, OutputError, ResNetGuiError, as_cancel_check
from resnet_gui.core.images import IMAGE_EXTENSIONS, images_under
from resnet_gui.core.text import printable, printable_path
from resnet_gui.core.userfiles import UserFileError, file_digest, open_user_file, os_reason, read_user_file

__all__ = [
    "PROJECT_FORMAT",
    "SAVED_IMAGE_FORMATS",
    "AddResult",
    "ClassExistsError",
    "ClassNameError",
    "LabellingProject",
    "NotAProjectError",
    "PhotoRecord",
    "ProjectError",
    "ProjectExistsError",
    "SkippedFile",
    "UndoneChange",
    "UnknownClassError",
    "forget_project",
    "is_project",
    "iter_project_folders",
    "projects_dir",
    "recent_projects",
    "remember_project",
    "validate_class_name",
]

PROJECT_FORMAT = "resnet-gui-project/1"
RECENT_FORMAT = "resnet-gui-recent-projects/1"
META_FOLDER = ".project"
"""The project's own folder: hidden, so the dataset scan never takes it for a class."""
MANIFEST_FILE = "manifest.json"
TRASH_FOLDER = "trash"
RECENT_FILE = "recent_projects.json"
MAX_RECENT = 10
MAX_UNDO = 50
MAX_MANIFEST_BYTES = 256 << 20
SOURCE_CAMERA = "camera"
SOURCE_PASTED = "pasted"
SOURCE_FOUND = "found in the project folder"
"""The source of a photo that was put into a class folder from outside the app."""

_UNSAFE = set('/\\:*?"<>|')
_SPLIT_NAMES = frozenset({"train", "val", "valid", "validation", "test"})
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(1, 10)} | {f"lpt{i}" for i in range(1, 10)}
)
SAVED_IMAGE_FORMATS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "jpeg": (".jpg", "JPEG", {"quality": 95}),
    "png": (".png", "PNG", {}),
}
"""How :meth:`LabellingProject.add_image` saves an image held in memory: suffix, Pillow format, options."""
_SAVE_EVERY = 50
"""While adding many files, the manifest is saved after this many (a crash loses no more)."""


# --- errors -------------------------------------------------------------------------------------


class ProjectError(ResNetGuiError):
    """A labelling project that cannot be opened or changed as asked: one sentence for the user."""

    exit_code = 2


class ClassNameError(ProjectError):
    """A class name that cannot be used (empty, a path separator, a reserved name)."""


class ClassExistsError(ClassNameError):
    """A class name that the project already has (compared without regard to case)."""


class UnknownClassError(ProjectError):
    """A class that the project does not have (renamed or deleted meanwhile)."""


class ProjectExistsError(ProjectError):
    """A new project whose folder is already taken."""


class NotAProjectError(ProjectError):
    """A folder that is not a labelling project (no manifest, or a damaged one)."""


# --- names --------------------------------------------------------------------------------------


def projects_dir() -> Path:
    """Where new projects go: ``<data folder>/projects`` (not created here)."""
    return paths.data_dir() / "projects"


def validate_class_name(name: str, existing: Iterable[str] = (), *, renaming: str | None = None) -> str:
    """``name`` stripped, or :class:`ClassNameError` saying in one sentence why it cannot be a class.

    ``existing`` are the project's classes: a name equal to one of them without regard to case is a
    :class:`ClassExistsError` (two folders ``Cat`` and ``cat`` are one folder on Windows and macOS),
    except ``renaming`` itself, so a class can be renamed to another spelling of its own name.
    """
    stripped = name.strip()
    shown = printable(stripped)
    if not stripped:
        raise ClassNameError("Give the class a name.")
    if any(ch in _UNSAFE or ord(ch) < 32 for ch in stripped):
        raise ClassNameError(
            f"The class name '{shown}' cannot be used: "
            'it may not contain / \\ : * ? " < > | or control characters.'
        )
    if stripped.startswith("."):
        raise ClassNameError(f"The class name '{shown}' cannot be used: a name starting with '.' is hidden.")
    if stripped.endswith("."):
        raise ClassNameError(f"The class name '{shown}' cannot be used: a name may not end with '.'.")
    lower = stripped.lower()
    if lower == LEFT_OUT_FOLDER:
        raise ClassNameError(f"The class name '{shown}' cannot be used: it is where left-out photos go.")
    if lower in _SPLIT_NAMES:
        raise ClassNameError(
            f"The class name '{shown}' cannot be used: it would make the project look like train/val folders."
        )
    if lower.split(".")[0] in _WINDOWS_RESERVED:
        raise ClassNameError(f"The class name '{shown}' cannot be used: Windows reserves it for a device.")
    if len(os.fsencode(stripped)) > 200:
        raise ClassNameError(f"The class name '{shown[:40]}…' is too long; keep it under 200 characters.")
    for other in existing:
        if other.lower() == lower and other != renaming:
            raise ClassExistsError(f"There is already a class named '{printable(other)}'.")
    return stripped


def _project_folder_name(name: str) -> str:
    """A project's display name as a folder name (same rules as a class name, sanitised not refused)."""
    cleaned = "".join("_" if ch in _UNSAFE or ord(ch) < 32 else ch for ch in name).strip().strip(".")
    if cleaned.lower().split(".")[0] in _WINDOWS_RESERVED:
        cleaned = f"_{cleaned}"
    return cleaned[:100] or "project"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _suffixed(path: Path, number: int) -> Path:
    return path if number == 0 else path.with_name(f"{path.stem}-{number}{path.suffix}")


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoRecord:
    """What the manifest knows of one photo of the project."""

    path: Path
    """The photo in the project (absolute)."""
    class_name: str
    source: str
    """The original file's path, or ``"camera"`` / ``"pasted"``."""
    added: str
    """When it was added (ISO 8601, UTC)."""
    sha256: str


@dataclass(frozen=True)
class SkippedFile:
    """A file that was not added, and why (one short reason)."""

    path: Path
    reason: str


@dataclass
class AddResult:
    """What :meth:`LabellingProject.add_files` did."""

    added: list[Path] = field(default_factory=list)
    """The new photos in the project."""
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)
    """(the file given, the photo of the project with the same content): skipped."""
    skipped: list[SkippedFile] = field(default_factory=list)
    """Files that are not images or cannot be read: reported, not fatal."""

    def summary(self) -> str:
        """One line for a status bar: ``"12 photos added, 2 already there, 1 not an image"``."""
        parts = [f"{len(self.added)} photo{'' if len(self.added) == 1 else 's'} added"]
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} already in the project")
        if self.skipped:
            n = len(self.skipped)
            parts.append(f"{n} file{'' if n == 1 else 's'} skipped (not an image or unreadable)")
        return ", ".join(parts) + "."


@dataclass(frozen=True)
class UndoneChange:
    """What :meth:`LabellingProject.undo_last` reverted, in words for a status bar."""

    kind: str
    description: str


# --- the lock shared by every object on one project ---------------------------------------------

_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(root: Path) -> threading.RLock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(os.fspath(root), threading.RLock())


def is_project(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds a project's manifest (cheap: the file is not read)."""
    return (Path(folder) / META_FOLDER / MANIFEST_FILE).is_file()


# --- the project --------------------------------------------------------------------------------


class LabellingProject:
    """One labelling project: its classes are its sub-folders, its manifest says where photos came from."""

    def __init__(self, root: Path, name: str) -> None:
        """Use :meth:`create` or :meth:`open`."""
        self.root = root
        self.name = name
        self._lock = _lock_for(root)

    # -- making and opening --

    @classmethod
    def create(cls, name: str, parent: Path | None = None) -> LabellingProject:
        """A new, empty project named ``name`` in ``parent`` (default :func:`projects_dir`)."""
        display = name.strip()
        if not display:
            raise ProjectError("Give the project a name.")
        base = projects_dir() if parent is None else Path(parent).expanduser()
        root = base / _project_folder_name(display)
        if root.exists() or root.is_symlink():
            raise ProjectExistsError(
                f"A project or folder named '{printable(root.name)}' already exists in "
                f"'{printable_path(base)}'; open it, or choose another name."
            )
        try:
            (root / META_FOLDER / TRASH_FOLDER).mkdir(parents=True)
        except OSError as err:
            raise ProjectError(
                f"Cannot make the project folder '{printable_path(root)}': {os_reason(err)}."
            ) from None
        project = cls(paths.resolved_path(root), display)
        project._save(project._blank_manifest())
        return project

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> LabellingProject:
        """The project in ``root``; :class:`NotAProjectError` when it is not one (or is damaged)."""
        folder = paths.resolved_path(Path(root))
        if not folder.is_dir():
            raise NotAProjectError(
                f"The project folder '{printable_path(folder)}' "
                f"{'is not a folder' if folder.exists() else 'does not exist (moved or deleted?)'}."
            )
        project = cls(folder, folder.name)
        data = project._load()
        project.name = str(data.get("name") or folder.name)
        return project

    def _blank_manifest(self) -> dict[str, Any]:
        return {"format": PROJECT_FORMAT, "name": self.name, "created": _now(), "photos": {}, "undo": []}

    @property
    def meta_folder(self) -> Path:
        return self.root / META_FOLDER

    @property
    def manifest_path(self) -> Path:
        return self.meta_folder / MANIFEST_FILE

    # -- the manifest --

    def _load(self) -> dict[str, Any]:
        path = self.manifest_path
        shown = printable_path(self.root)
        if not path.exists():
            raise NotAProjectError(f"'{shown}' is not a labelling project of this app (it has no manifest).")
        try:
            data = json.loads(read_user_file(path, max_bytes=MAX_MANIFEST_BYTES).decode("utf-8"))
        except UserFileError as err:
            raise NotAProjectError(f"Cannot read the project '{shown}': {err.reason}.") from None
        except (ValueError, UnicodeDecodeError):
            data = None
        if (
            not isinstance(data, dict)
            or data.get("format") != PROJECT_FORMAT
            or not isinstance(data.get("photos"), dict)
            or not isinstance(data.get("undo", []), list)
        ):
            raise NotAProjectError(
                f"The manifest of the project '{shown}' is damaged; its photos are still in its class "
                "folders, which you can use as a photo folder."
            )
        data.setdefault("undo", [])
        return data

    def _save(self, data: dict[str, Any]) -> None:
        data["undo"] = data.get("undo", [])[-MAX_UNDO:]
        try:
            write_text_atomic(self.manifest_path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        except OutputError as err:
            raise ProjectError(f"Cannot save the project: {str(err).rstrip('.')}.") from None

    def _key(self, photo: Path) -> str:
        return photo.relative_to(self.root).as_posix()

    def _inside(self, photo: Path) -> Path:
        """``photo`` as a path of one of the project's class folders, or :class:`ProjectError`."""
        absolute = paths.resolved_path(Path(photo))
        try:
            parts = absolute.relative_to(self.root).parts
        except ValueError:
            raise ProjectError(f"The photo '{printable_path(photo)}' is not in the project.") from None
        if len(parts) < 2 or parts[0] not in self.class_names():
            raise ProjectError(f"The photo '{printable_path(photo)}' is not in one of the project's classes.")
        return absolute

    # -- reading --

    def class_names(self) -> list[str]:
        """The classes: the project's visible sub-folders (what the dataset scan sees), sorted."""
        try:
            entries = sorted(self.root.iterdir(), key=lambda p: (p.name.lower(), p.name))
        except OSError as err:
            raise ProjectError(
                f"Cannot list the project '{printable_path(self.root)}': {os_reason(err)}."
            ) from None
        return [
            entry.name
            for entry in entries
            if entry.is_dir() and not entry.name.startswith(".") and entry.name.lower() != LEFT_OUT_FOLDER
        ]

    def _class_folder(self, class_name: str) -> Path:
        if class_name not in self.class_names():
            raise UnknownClassError(f"The project has no class named '{printable(class_name)}'.")
        return self.root / class_name

    def photos(self, class_name: str) -> list[Path]:
        """The photos of ``class_name``, in the order the training reads them."""
        return images_under(self._class_folder(class_name))

    def counts(self) -> dict[str, int]:
        """Photos per class, every class listed (zeros included)."""
        return {name: len(images_under(self.root / name)) for name in self.class_names()}

    def records(self) -> dict[Path, PhotoRecord]:
        """What the manifest knows of the photos that are in the project now (by path)."""
        data = self._load()
        out: dict[Path, PhotoRecord] = {}
        for key, entry in data["photos"].items():
            path = self.root / key
            if isinstance(entry, dict) and path.is_file():
                out[path] = PhotoRecord(
                    path,
                    str(entry.get("class", key.split("/")[0])),
                    str(entry.get("source", "")),
                    str(entry.get("added", "")),
                    str(entry.get("sha256", "")),
                )
        return out

    def record(self, photo: Path) -> PhotoRecord | None:
        """The manifest's record of one photo, or None (a photo put in from outside the app)."""
        return self.records().get(paths.resolved_path(Path(photo)))

    def can_undo(self) -> bool:
        return bool(self._load()["undo"])

    def undo_description(self) -> str:
        """What :meth:`undo_last` would undo, in words (``""`` when nothing)."""
        undo = self._load()["undo"]
        return str(undo[-1].get("description", "")) if undo else ""

    # -- classes --

    def add_class(self, name: str) -> None:
        """Make an empty class ``name`` (validated; see :func:`validate_class_name`)."""
        with self._lock:
            valid = validate_class_name(name, self.class_names())
            try:
                (self.root / valid).mkdir()
            except OSError as err:
                raise ProjectError(f"Cannot make the class '{printable(valid)}': {os_reason(err)}.") from None

    def rename_class(self, old: str, new: str) -> None:
        """Rename a class (its folder and its photos' records); undoable."""
        with self._lock:
            folder = self._class_folder(old)
            valid = validate_class_name(new, self.class_names(), renaming=old)
            if valid == old:
                return
            data = self._load()
            self._rename_folder(folder, self.root / valid)
            _rekey_class(data, old, valid)
            data["undo"].append(
                {"kind": "rename", "old": old, "new": valid, "description": f"rename of '{old}' to '{valid}'"}
            )
            self._save(data)

    def _rename_folder(self, folder: Path, target: Path) -> None:
        try:
            if folder.name.lower() == target.name.lower():  # a change of case only: through a free name
                step = folder.with_name(f"{folder.name}.renaming-{os.getpid()}")
                os.rename(folder, step)
                os.rename(step, target)
            else:
                if target.exists():
                    raise ClassExistsError(f"There is already a folder named '{printable(target.name)}'.")
                os.rename(folder, target)
        except OSError as err:
            raise ProjectError(
                f"Cannot rename the class '{printable(folder.name)}': {os_reason(err)}."
            ) from None

    def merge_classes(self, source: str, into: str) -> None:
        """Move every photo of ``source`` into ``into`` and remove ``source``; undoable."""
        with self._lock:
            source_folder = self._class_folder(source)
            into_folder = self._class_folder(into)
            if source == into:
                raise ProjectError("Choose two different classes to merge.")
            data = self._load()
            moved: list[list[str]] = []
            for photo in images_under(source_folder):
                target = self._move_file(photo, into_folder)
                _rekey(data, self._key(photo), self._key(target), into)
                moved.append([self._key(photo), self._key(target)])
            trash = self._trash_slot()
            self._move_to_trash(source_folder, trash)  # whatever is left (non-image files, sub-folders)
            data["undo"].append(
                {
                    "kind": "merge",
                    "source": source,
                    "into": into,
                    "moved": moved,
                    "trash": trash.name,
                    "description": f"merge of '{source}' into '{into}'",
                }
            )
            self._save(data)

    def delete_class(self, name: str) -> int:
        """Put a class and its photos in the project's trash (undoable); returns how many photos it had."""
        with self._lock:
            folder = self._class_folder(name)
            count = len(images_under(folder))
            data = self._load()
            trash = self._trash_slot()
            self._move_to_trash(folder, trash)
            data["undo"].append(
                {
                    "kind": "delete",
                    "class": name,
                    "trash": trash.name,
                    "description": f"deletion of the class '{name}' ({_photos(count)})",
                }
            )
            self._save(data)
            return count

    def remove_photos(self, photos: Sequence[Path]) -> int:
        """Put photos of the project in its trash (undoable); returns how many."""
        with self._lock:
            inside = [self._inside(photo) for photo in photos]
            if not inside:
                return 0
            data = self._load()
            trash = self._trash_slot()
            removed: list[str] = []
            for photo in inside:
                key = self._key(photo)
                target = trash / key
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(photo, target)
                except OSError as err:
                    raise ProjectError(
                        f"Cannot remove '{printable(photo.name)}': {os_reason(err)}."
                    ) from None
                removed.append(key)
            n = len(removed)
            data["undo"].append(
                {
                    "kind": "remove",
                    "removed": removed,
                    "trash": trash.name,
                    "description": f"removal of {n} photo{'' if n == 1 else 's'}",
                }
            )
            self._save(data)
            return n

    def move_photo(self, photo: Path, to_class: str) -> Path:
        """Move one photo of the project into another of its classes (undoable); returns its new path."""
        with self._lock:
            source = self._inside(photo)
            folder = self._class_folder(to_class)
            if source.parent == folder:
                return source
            data = self._load()
            target = self._move_file(source, folder)
            _rekey(data, self._key(source), self._key(target), to_class)
            data["undo"].append(
                {
                    "kind": "move",
                    "old": self._key(source),
                    "new": self._key(target),
                    "description": f"move of '{source.name}' to '{to_class}'",
                }
            )
            self._save(data)
            return target

    def _move_file(self, photo: Path, folder: Path, name: str | None = None) -> Path:
        """Rename ``photo`` into ``folder`` under a free name (never over another photo)."""
        wanted = folder / (name or photo.name)
        try:
            for number in range(1_000_000):
                candidate = _suffixed(wanted, number)
                if candidate.exists() or candidate.is_symlink():
                    continue
                try:
                    os.link(photo, candidate)
                except FileExistsError:
                    continue
                except OSError as err:  # no hard links (FAT, some network shares): a checked rename
                    if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
                        raise
                    os.rename(photo, candidate)
                    return candidate
                os.unlink(photo)
                return candidate
        except OSError as err:
            raise ProjectError(f"Cannot move '{printable(photo.name)}': {os_reason(err)}.") from None
        raise ProjectError(f"Cannot move '{printable(photo.name)}': every name is taken.")  # pragma: no cover

    def _trash_slot(self) -> Path:
        trash = self.meta_folder / TRASH_FOLDER
        trash.mkdir(parents=True, exist_ok=True)
        stamp = f"{int(time.time() * 1000)}"
        for number in range(1000):
            slot = trash / (stamp if number == 0 else f"{stamp}-{number}")
            try:
                slot.mkdir()
                return slot
            except FileExistsError:
                continue
        raise ProjectError("Cannot make room in the project's trash.")  # pragma: no cover

    def _move_to_trash(self, folder: Path, slot: Path) -> None:
        try:
            os.rename(folder, slot / folder.name)
        except OSError as err:
            raise ProjectError(
                f"Cannot remove the class '{printable(folder.name)}': {os_reason(err)}."
            ) from None

    def undo_last(self) -> UndoneChange | None:
        """Revert the last rename, merge, delete, removal or move (None when there is nothing to undo)."""
        with self._lock:
            data = self._load()
            if not data["undo"]:
                return None
            change = data["undo"][-1]
            kind = change.get("kind")
            trash = self.meta_folder / TRASH_FOLDER / str(change.get("trash", "?"))
            existing = self.class_names()
            if kind == "rename":
                old, new = str(change["old"]), str(change["new"])
                validate_class_name(old, existing, renaming=new)
                self._rename_folder(self._class_folder(new), self.root / old)
                _rekey_class(data, new, old)
            elif kind == "delete":
                name = str(change["class"])
                validate_class_name(name, existing)
                try:
                    os.rename(trash / name, self.root / name)
                except OSError as err:
                    raise ProjectError(
                        f"Cannot restore the class '{printable(name)}': {os_reason(err)}."
                    ) from None
                _remove_empty(trash)
            elif kind == "merge":
                source = str(change["source"])
                validate_class_name(source, existing)
                try:
                    os.rename(trash / source, self.root / source)
                except OSError as err:
                    raise ProjectError(
                        f"Cannot restore the class '{printable(source)}': {os_reason(err)}."
                    ) from None
                _remove_empty(trash)
                for old_key, new_key in change.get("moved", []):
                    now = self.root / new_key
                    if now.is_file():
                        (self.root / old_key).parent.mkdir(parents=True, exist_ok=True)
                        back = self._move_file(now, (self.root / old_key).parent, Path(old_key).name)
                        _rekey(data, new_key, self._key(back), source)
            elif kind == "move":
                now = self.root / str(change["new"])
                was = Path(str(change["old"]))
                folder = self.root / was.parent
                if now.is_file() and folder.is_dir():
                    back = self._move_file(now, folder, was.name)
                    _rekey(data, str(change["new"]), self._key(back), was.parts[0])
            elif kind == "remove":
                for key in change.get("removed", []):
                    held = trash / key
                    folder = (self.root / key).parent
                    if held.is_file():
                        folder.mkdir(parents=True, exist_ok=True)
                        back = self._move_file(held, folder, Path(key).name)
                        _rekey(data, key, self._key(back), Path(key).parts[0])
                _remove_empty(trash)
            data["undo"].pop()
            self._save(data)
            return UndoneChange(str(kind), f"Undid the {change.get('description', kind)}.")

    # -- adding photos --

    def _known_digests(self, data: dict[str, Any]) -> dict[str, Path]:
        """SHA-256 → photo for every photo in the project now; photos the manifest lacks are hashed
        and recorded (put in from outside the app)."""
        known: dict[str, Path] = {}
        listed = data["photos"]
        for name in self.class_names():
            for photo in images_under(self.root / name):
                key = self._key(photo)
                entry = listed.get(key)
                digest = entry.get("sha256") if isinstance(entry, dict) else None
                if not isinstance(digest, str) or not digest:
                    try:
                        digest = file_digest(photo)
                    except UserFileError:
                        continue
                    listed[key] = {"class": name, "source": SOURCE_FOUND, "added": _now(), "sha256": digest}
                known.setdefault(digest, photo)
        return known

    def add_files(
        self,
        class_name: str,
        paths: Iterable[str | os.PathLike[str]],
        cancel: CancelCheck | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> AddResult:
        """Copy photos (files, and the images inside folders) into ``class_name``.

        The originals are only read. A file with the content of a photo already in the project is
        skipped (``duplicates``); a non-image or unreadable file is reported (``skipped``), never
        fatal. ``progress(done, total)`` is called after each file. When ``cancel`` becomes true the
        photos copied so far stay (and are recorded), and :class:`Cancelled` is raised.
        """
        should_stop = as_cancel_check(cancel)
        folder = self._class_folder(class_name)
        files, skipped = self._expand(paths)
        result = AddResult(skipped=skipped)
        with self._lock:
            data = self._load()
            before = len(data["photos"])
            known = self._known_digests(data)
            if len(data["photos"]) != before:  # photos put in from outside the app: record them
                self._save(data)
        pending: dict[str, dict[str, Any]] = {}
        try:
            for done, source in enumerate(files):
                if should_stop():
                    raise Cancelled("Adding photos was cancelled; the photos copied so far are kept.")
                self._add_one(source, folder, known, pending, result)
                if len(pending) >= _SAVE_EVERY:
                    self._record(pending)
                if progress is not None:
                    progress(done + 1, len(files))
        finally:
            self._record(pending)
        return result

    def _expand(self, given: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[SkippedFile]]:
        """The files to add: each file given, and the image files inside each folder given."""
        files: list[Path] = []
        skipped: list[SkippedFile] = []
        for item in given:
            path = Path(item).expanduser()
            resolved = paths.resolved_path(path)
            if resolved == self.root or self.root in resolved.parents:
                skipped.append(SkippedFile(path, "it is already inside the project"))
            elif path.is_dir():
                for current, dirs, names in os.walk(path):
                    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                    for name in sorted(names):
                        if name.startswith("."):
                            continue
                        file = Path(current) / name
                        if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                            files.append(file)
                        else:
                            skipped.append(SkippedFile(file, "not an image file"))
            else:
                files.append(path)
        return files, skipped

    def _add_one(
        self,
        source: Path,
        folder: Path,
        known: dict[str, Path],
        pending: dict[str, dict[str, Any]],
        result: AddResult,
    ) -> None:
        try:
            with open_user_file(source) as reader:
                suffix = _image_suffix(reader, source.name)
                if suffix is None:
                    result.skipped.append(SkippedFile(source, "not an image file or unsupported format"))
                    return
                reader.seek(0)
                placed = self._place(
                    iter(lambda: reader.read(1 << 20), b""), folder, _copy_name(source, suffix), known
                )
        except UserFileError as err:
            result.skipped.append(SkippedFile(source, err.reason))
            return
        except OSError as err:
            if isinstance(err, PermissionError) or err.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
                raise ProjectError(f"Cannot copy photos into the project: {os_reason(err)}.") from None
            result.skipped.append(SkippedFile(source, os_reason(err)))
            return
        photo, digest, duplicate_of = placed
        if duplicate_of is not None:
            result.duplicates.append((source, duplicate_of))
            return
        known[digest] = photo
        pending[self._key(photo)] = {
            "class": folder.name,
            "source": str(paths.resolved_path(source)),
            "added": _now(),
            "sha256": digest,
        }
        result.added.append(photo)

    def _place(
        self, blocks: Iterable[bytes], folder: Path, wanted_name: str, known: dict[str, Path]
    ) -> tuple[Path, str, Path | None]:
        """Write ``blocks`` into ``folder`` under a free name; (photo, sha256, None), or (existing photo,
        sha256, existing photo) when the content is already in the project (nothing is then kept).

        Written to a hidden temporary file first, flushed, then linked to a name nobody holds: never
        overwrites, and no half-written photo is ever visible to a training.
        """
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(prefix=".adding.", suffix=".partial", dir=folder)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as writer:
                for block in blocks:
                    writer.write(block)
                    digest.update(block)
                writer.flush()
                os.fsync(writer.fileno())
            hexdigest = digest.hexdigest()
            existing = known.get(hexdigest)
            if existing is not None and existing.is_file():
                return existing, hexdigest, existing
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            wanted = folder / wanted_name
            for number in range(1_000_000):
                candidate = _suffixed(wanted, number)
                try:
                    os.link(tmp, candidate)
                except FileExistsError:
                    continue
                except OSError as err:
                    if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
                        raise
                    if candidate.exists() or candidate.is_symlink():
                        continue
                    os.rename(tmp, candidate)
                break
            else:  # pragma: no cover
                raise OSError(errno.EEXIST, "every name is taken")
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        fsync_directory(folder)
        return candidate, hexdigest, None

    def _record(self, pending: dict[str, dict[str, Any]]) -> None:
        """Merge new photos' records into the manifest (re-read first: another writer may have added)."""
        if not pending:
            return
        with self._lock:
            data = self._load()
            data["photos"].update(pending)
            self._save(data)
        pending.clear()

    def add_image(
        self,
        class_name: str,
        rgb: np.ndarray,
        source: str = SOURCE_CAMERA,
        *,
        image_format: str | None = None,
    ) -> Path:
        """Save an image held in memory (a camera frame, a pasted picture) as a photo of ``class_name``.

        ``rgb`` is HxWx3 uint8. Saved as JPEG (quality 95) for the camera, PNG for a paste (no loss),
        unless ``image_format`` (``"jpeg"``/``"png"``) says otherwise; written atomically. Returns the
        photo, or the project's existing photo when exactly the same image is already there.
        """
        from PIL import Image

        array = np.asarray(rgb)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
            raise ValueError(f"expected an HxWx3 uint8 image, got {array.dtype} {array.shape}")
        fmt = (image_format or ("png" if source == SOURCE_PASTED else "jpeg")).lower()
        if fmt not in SAVED_IMAGE_FORMATS:
            raise ValueError(
                f"image_format must be one of {sorted(SAVED_IMAGE_FORMATS)}, not {image_format!r}"
            )
        suffix, pillow_format, options = SAVED_IMAGE_FORMATS[fmt]
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(array), "RGB").save(buffer, pillow_format, **options)
        stem = "".join(ch if ch.isalnum() else "-" for ch in source)[:20] or "image"
        name = f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}{suffix}"
        folder = self._class_folder(class_name)
        with self._lock:
            data = self._load()
            known = self._known_digests(data)
            try:
                photo, digest, duplicate_of = self._place([buffer.getvalue()], folder, name, known)
            except OSError as err:
                raise ProjectError(f"Cannot save the image into the project: {os_reason(err)}.") from None
            if duplicate_of is None:
                data["photos"][self._key(photo)] = {
                    "class": class_name,
                    "source": source,
                    "added": _now(),
                    "sha256": digest,
                }
            self._save(data)
        return photo

    # -- export --

    def export_as_folders(
        self,
        dest: Path,
        cancel: CancelCheck | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Path:
        """Copy the project's photos to ``dest`` as one folder per class (manifest and trash left out).

        ``dest`` must not exist or be an empty folder (nothing of the user's is overwritten). Written
        to a hidden folder beside ``dest`` and renamed into place at the end, so a cancelled or failed
        export leaves nothing half-made.
        """
        should_stop = as_cancel_check(cancel)
        dest = Path(dest).expanduser()
        shown = printable_path(dest)
        resolved = paths.resolved_path(dest)
        if resolved == self.root or self.root in resolved.parents:
            raise ProjectError(f"Choose a folder outside the project to export to, not '{shown}'.")
        if dest.exists() or dest.is_symlink():
            if not dest.is_dir() or dest.is_symlink():
                raise ProjectError(f"Cannot export to '{shown}': it is a file, not a folder.")
            if any(dest.iterdir()):
                raise ProjectError(
                    f"Cannot export to '{shown}': the folder is not empty; choose an empty or new folder."
                )
        per_class = {name: self.photos(name) for name in self.class_names()}
        total = sum(len(photos) for photos in per_class.values())
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{dest.name[:60]}.", suffix=".partial", dir=dest.parent))
        except OSError as err:
            raise ProjectError(f"Cannot export to '{shown}': {os_reason(err)}.") from None
        try:
            done = 0
            for name, photos in per_class.items():
                (staging / name).mkdir()
                for photo in photos:
                    if should_stop():
                        raise Cancelled("The export was cancelled; nothing was written.")
                    target = staging / photo.relative_to(self.root)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(photo, target)
                    done += 1
                    if progress is not None:
                        progress(done, total)
            if dest.is_dir():
                dest.rmdir()  # the empty folder the user chose
            os.rename(staging, dest)
        except OSError as err:
            shutil.rmtree(staging, ignore_errors=True)
            raise ProjectError(f"Cannot export to '{shown}': {os_reason(err)}.") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        fsync_directory(dest.parent)
        return dest

    def empty_trash(self) -> None:
        """Forget every undo step and delete what Delete and Merge put aside (the project's copies only)."""
        with self._lock:
            data = self._load()
            trash = self.meta_folder / TRASH_FOLDER
            shutil.rmtree(trash, ignore_errors=True)
            trash.mkdir(parents=True, exist_ok=True)
            data["undo"] = []
            self._save(data)


# --- helpers of the manifest --------------------------------------------------------------------


def _rekey(data: dict[str, Any], old_key: str, new_key: str, class_name: str) -> None:
    entry = data["photos"].pop(old_key, None)
    if not isinstance(entry, dict):
        return
    entry["class"] = class_name
    data["photos"][new_key] = entry


def _rekey_class(data: dict[str, Any], old: str, new: str) -> None:
    prefix = f"{old}/"
    photos = data["photos"]
    for key in [k for k in photos if k.startswith(prefix)]:
        _rekey(data, key, f"{new}/{key[len(prefix) :]}", new)


def _photos(count: int) -> str:
    return f"{count} photo{'' if count == 1 else 's'}"


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def _image_suffix(reader: io.BufferedReader, name: str) -> str | None:
    """The suffix (``.jpg``…) of the image format ``reader`` holds, or None when it is not an image
    the app reads. Only the header is parsed (fast); a truncated photo is the health check's to find."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(reader) as image:
            fmt = image.format or ""
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    own = os.path.splitext(name)[1].lower()
    if own in IMAGE_EXTENSIONS and Image.registered_extensions().get(own) == fmt:
        return own
    for suffix, registered in Image.registered_extensions().items():
        if registered == fmt and suffix in IMAGE_EXTENSIONS:
            return suffix
    return None


def _copy_name(source: Path, suffix: str) -> str:
    """The copy's file name: the original's, visible to the scan, with the suffix of its format."""
    stem = source.stem.lstrip(".") or "photo"
    own = source.suffix.lower()
    return (
        f"{stem}{source.suffix}"
        if own == suffix
        else f"{stem}{source.suffix if own in IMAGE_EXTENSIONS else ''}{suffix}"
    )


# --- recent projects ----------------------------------------------------------------------------


def _recent_file() -> Path:
    return paths.data_dir() / RECENT_FILE


def _read_recent() -> list[str]:
    path = _recent_file()
    try:
        data = json.loads(read_user_file(path, max_bytes=1 << 20).decode("utf-8"))
    except (UserFileError, ValueError, UnicodeDecodeError):
        return []  # absent or damaged: the list is only a convenience, started afresh
    if (
        not isinstance(data, dict)
        or data.get("format") != RECENT_FORMAT
        or not isinstance(data.get("projects"), list)
    ):
        return []
    return [item for item in data["projects"] if isinstance(item, str) and item]


def _write_recent(items: list[str]) -> None:
    # The recent list is a convenience: failing to save it must not fail the user's work.
    with contextlib.suppress(OutputError):
        data = {"format": RECENT_FORMAT, "projects": items[:MAX_RECENT]}
        write_text_atomic(_recent_file(), json.dumps(data, indent=1) + "\n")


def remember_project(root: str | os.PathLike[str]) -> None:
    """Put a project first in File → Recent Projects."""
    key = os.fspath(paths.resolved_path(Path(root)))
    _write_recent([key] + [item for item in _read_recent() if item != key])


def forget_project(root: str | os.PathLike[str]) -> None:
    """Take a project off the recent list (its folder is left as it is)."""
    key = os.fspath(paths.resolved_path(Path(root)))
    _write_recent([item for item in _read_recent() if item != key])


def recent_projects() -> list[Path]:
    """The recently opened projects, newest first, leaving out those whose folder is gone."""
    return [Path(item) for item in _read_recent() if is_project(item)]


def iter_project_folders() -> Iterator[Path]:
    """The projects in :func:`projects_dir` (by folder name)."""
    base = projects_dir()
    if not base.is_dir():
        return
    for entry in sorted(base.iterdir()):
        if entry.is_dir() and is_project(entry):
            yield entry
