"""Corrections: "Wrong? → pick the right class" on a prediction of a fine-tuned model.

The user's photo is never changed nor moved: a **copy** is placed in the training folder of the
right class (an existing class, or a new one), and the correction is remembered in the app's data
folder, in the dataset's record folder ``data_dir/datasets/<key>/corrections.json`` (``<key>``:
the dataset folder's sanitised name and a short hash of its resolved path; the same folder keeps
the training data review's decisions, :mod:`resnet_gui.core.training.review`). The list is what a
"Retrain with N new photos" banner counts; after a retrain, :meth:`Corrections.clear` forgets it
(the copies are now part of the data).

Every change can be undone: :meth:`Corrections.undo` deletes the copy, but only while it is still
the file we wrote (its SHA-256 matches); a copy the user has edited or replaced since is left where
it is and only forgotten, and the returned correction says so in its ``note``.

The copy is written to a hidden temporary file in the class folder, flushed, then hard-linked to a
free name (``name.jpg``, ``name-1.jpg`` …), so nothing is ever overwritten and no half-written
photo is ever visible to a training. The list is written atomically (:mod:`.atomic`). No Qt, no
torch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from resnet_gui.core import paths
from resnet_gui.core.atomic import fsync_directory, output_reason, write_text_atomic
from resnet_gui.core.errors import ImageLoadError, OutputError, ResNetGuiError
from resnet_gui.core.images import IMAGE_EXTENSIONS, load_image
from resnet_gui.core.text import printable, printable_path
from resnet_gui.core.userfiles import UserFileError, file_digest, open_user_file, os_reason, read_user_file

__all__ = [
    "CORRECTIONS_FILE",
    "CORRECTIONS_FORMAT",
    "LEFT_OUT_FOLDER",
    "Correction",
    "CorrectionError",
    "Corrections",
    "class_folder_in",
    "dataset_key",
    "dataset_record_folder",
    "read_record",
    "reserved_folder_name",
    "sanitised_class_folder",
    "train_folder",
]

CORRECTIONS_FORMAT = "resnet-gui-corrections/1"
CORRECTIONS_FILE = "corrections.json"
#: Where the review's *Leave out* puts photos, at the dataset's root (the scan ignores it).
LEFT_OUT_FOLDER = "_left_out"
#: The largest record file read back (a list of corrections or review decisions).
MAX_RECORD_BYTES = 64 << 20
_SPLIT_NAMES = frozenset({"train", "val", "valid", "validation", "test"})
_UNSAFE = set('/\\:*?"<>|')


class CorrectionError(ResNetGuiError):
    """A correction that cannot be made or undone (read-only class folder, dataset folder moved or
    missing, a bundle without a dataset folder, an unreadable photo, a damaged list): one sentence."""

    exit_code = 2


@dataclass(frozen=True)
class Correction:
    """One photo the user said the model got wrong, and the copy that teaches it the right class."""

    photo: Path
    """The user's photo: never changed, never moved."""
    copy: Path
    """The copy placed in the training folder of ``label``."""
    label: str
    """The right class (an existing class or a new name)."""
    predicted: str
    """What the model said."""
    digest: str
    """SHA-256 of the copy, so undo deletes only our unchanged copy."""
    when: str
    """When it was made (ISO 8601, UTC)."""
    created_folder: bool = False
    """Whether this correction made the class folder (undo removes it again when it is left empty)."""
    note: str = ""
    """Set on the correction :meth:`Corrections.undo` returns: ``""`` when the copy was deleted,
    else the sentence saying why it was left in place (changed since, or already gone)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "photo": str(self.photo),
            "copy": str(self.copy),
            "label": self.label,
            "predicted": self.predicted,
            "digest": self.digest,
            "when": self.when,
            "created_folder": self.created_folder,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Correction:
        """One entry of the list; ``ValueError`` when it is not one (the caller says the file is damaged)."""
        if not isinstance(data, dict):
            raise ValueError("an entry is not an object")
        texts = {}
        for key in ("photo", "copy", "label", "predicted", "digest", "when"):
            value = data.get(key)
            if not isinstance(value, str) or "\x00" in value:
                raise ValueError(f"an entry's {key!r} is not a text")
            texts[key] = value
        if not texts["photo"] or not texts["copy"] or not texts["label"]:
            raise ValueError("an entry has an empty path or class")
        return cls(
            photo=Path(texts["photo"]),
            copy=Path(texts["copy"]),
            label=texts["label"],
            predicted=texts["predicted"],
            digest=texts["digest"],
            when=texts["when"],
            created_folder=data.get("created_folder") is True,
        )


# --- the dataset's record folder (shared with the review) --------------------------------------


def sanitised_class_folder(label: str) -> str:
    """A class name as a folder name on any OS (the rule of Sort into Folders' ``class_folder_name``)."""
    from resnet_gui.core.batch.sort import class_folder_name

    return class_folder_name(label)


def dataset_key(root: str | os.PathLike[str]) -> str:
    """The name of a dataset's record folder: its sanitised folder name and a hash of its resolved path."""
    resolved = paths.resolved_path(Path(root))
    name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in (resolved.name or "dataset"))[:40]
    digest = hashlib.sha256(os.fsencode(str(resolved))).hexdigest()[:12]
    return f"{name or 'dataset'}-{digest}"


def dataset_record_folder(root: str | os.PathLike[str], data_dir: Path | None = None) -> Path:
    """``data_dir/datasets/<key>/``: where a dataset's corrections and review decisions are kept."""
    base = paths.data_dir() if data_dir is None else Path(data_dir)
    return base / "datasets" / dataset_key(root)


def read_record(path: Path, fmt: str, what: str, error: type[ResNetGuiError]) -> dict[str, Any] | None:
    """A record file of the data folder as a JSON object of format ``fmt``, or None when absent.

    A file that is unreadable, not JSON or of another format raises ``error`` with one sentence
    naming ``what`` it is and what to do (remove it to start afresh).
    """
    if not (path.exists() or path.is_symlink()):
        return None
    shown = printable_path(path)
    try:
        data = json.loads(read_user_file(path, max_bytes=MAX_RECORD_BYTES).decode("utf-8"))
    except UserFileError as err:
        raise error(f"Cannot read {what} '{shown}': {err.reason}.") from None
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise error(
            f"The {what} '{shown}' is damaged (not a file this app wrote); remove it to start a new "
            "one (no photo is lost: the files in the dataset folder stay as they are)."
        )
    return data


def write_record(path: Path, data: Mapping[str, Any], what: str, error: type[ResNetGuiError]) -> None:
    """Write a record file atomically; a failure is ``error`` with one sentence."""
    try:
        write_text_atomic(path, json.dumps(data, indent=1) + "\n")
    except OutputError as err:
        raise error(f"Cannot save {what}: {str(err).rstrip('.')}.") from None


def reserved_folder_name(name: str, layout_has_splits: bool) -> str | None:
    """Why ``name`` cannot be a class folder (hidden, the review's folder, a split's name), or None."""
    if name.startswith("."):
        return "a folder whose name starts with '.' is hidden and never read"
    if name.lower() == LEFT_OUT_FOLDER:
        return f"'{LEFT_OUT_FOLDER}' is where left-out photos go"
    if not layout_has_splits and name.lower() in _SPLIT_NAMES:
        return "a folder of that name would make the dataset look like train/val folders"
    return None


def class_folder_in(
    base: Path, label: str, layout_has_splits: bool, error: type[ResNetGuiError] = CorrectionError
) -> Path:
    """The folder of class ``label`` inside ``base`` (the dataset root, or one of its split
    folders): the class's own folder when it exists, else a new sanitised name. A name that cannot
    be a class folder (empty, hidden, a split's name, ``_left_out``) raises ``error``."""
    if not label.strip():
        raise error("Give the class a name.")
    existing = base / label
    plain = label not in (".", "..") and "/" not in label and "\\" not in label
    if plain and existing.is_dir() and reserved_folder_name(label, layout_has_splits) is None:
        return existing
    name = sanitised_class_folder(label)
    why = reserved_folder_name(name, layout_has_splits)
    if why is not None:
        raise error(f"The class name '{printable(label)}' cannot be used: {why}.")
    return base / name


def train_folder(root: Path, error: type[ResNetGuiError] = CorrectionError) -> Path | None:
    """The dataset's ``train/`` folder (any case), when it has the train/val layout."""
    try:
        for entry in sorted(root.iterdir()):
            if entry.name.lower() == "train" and entry.is_dir():
                return entry
    except OSError as err:
        raise error(f"Cannot list the dataset folder '{printable_path(root)}': {os_reason(err)}.") from None
    return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _suffixed(path: Path, number: int) -> Path:
    return path if number == 0 else path.with_name(f"{path.stem}-{number}{path.suffix}")


def _digest_of(path: Path) -> str | None:
    """SHA-256 of a file, or None when it cannot be read (gone, not a regular file)."""
    try:
        return file_digest(path)
    except (UserFileError, OSError):
        return None


def _copy_name(photo: Path) -> str:
    """The copy's file name: the photo's, visible to the scan (no leading dot, an image suffix)."""
    name = photo.name.lstrip(".") or "photo"
    if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
        name += _format_suffix(photo)
    return name


def _format_suffix(photo: Path) -> str:
    from PIL import Image

    try:
        with open_user_file(photo) as handle, Image.open(handle) as image:
            fmt = image.format or ""
    except Exception:  # decoding was already checked; any failure here only costs the suffix
        fmt = ""
    for suffix, name in Image.registered_extensions().items():
        if name == fmt and suffix in IMAGE_EXTENSIONS:
            return suffix
    return ".png"


def _place_copy(photo: Path, folder: Path) -> tuple[Path, str]:
    """Copy ``photo`` into ``folder`` under a free name; return the copy and its SHA-256.

    Written to a hidden temporary file first, flushed, then linked to a name that nobody holds:
    never overwrites, and no half-written photo is ever visible. ``OSError``/``UserFileError`` pass.
    """
    wanted = folder / _copy_name(photo)
    digest = hashlib.sha256()
    with open_user_file(photo) as reader:
        fd, tmp_name = tempfile.mkstemp(prefix=".correction.", suffix=".partial", dir=folder)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as writer:
                for block in iter(lambda: reader.read(1 << 20), b""):
                    writer.write(block)
                    digest.update(block)
                writer.flush()
                os.fsync(writer.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            for number in range(1_000_000):
                candidate = _suffixed(wanted, number)
                try:
                    os.link(tmp, candidate)
                except FileExistsError:
                    continue
                except OSError as err:  # no hard links here (some network and FAT file systems)
                    if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
                        raise
                    if candidate.exists() or candidate.is_symlink():
                        continue
                    os.rename(tmp, candidate)
                break
            else:  # pragma: no cover - a million copies of one name
                raise OSError(errno.EEXIST, "every name is taken")
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
    fsync_directory(folder)
    return candidate, digest.hexdigest()


# --- the list ---------------------------------------------------------------------------------


class Corrections:
    """The corrections made to one dataset since its last training, persisted in the data folder.

    ``dataset_root`` must exist (else :class:`CorrectionError`: moved or deleted since the
    training). The list is read again before every change, so two windows on the same dataset
    do not lose each other's corrections.
    """

    def __init__(self, dataset_root: Path, data_dir: Path | None = None) -> None:
        root = Path(dataset_root).expanduser()
        if not root.is_dir():
            where = printable_path(root)
            if root.exists():
                raise CorrectionError(f"The dataset folder '{where}' is not a folder.")
            raise CorrectionError(
                f"The dataset folder '{where}' is gone (moved or deleted since the training), so a "
                "correction has nowhere to go; put it back, or fine-tune on its new place first."
            )
        self.root = paths.resolved_path(root)
        self.record_folder = dataset_record_folder(self.root, data_dir)
        self.path = self.record_folder / CORRECTIONS_FILE
        self._entries = self._load()

    @classmethod
    def for_bundle(cls, metadata: Mapping[str, Any], data_dir: Path | None = None) -> Corrections:
        """The corrections of the dataset a fine-tuned bundle was trained on (its ``data_root``)."""
        from resnet_gui.core.metadata import trained_dataset_folder

        root = trained_dataset_folder(
            metadata,
            not_recorded=CorrectionError,
            moved=CorrectionError,
            why=", so there is no training folder to put a corrected photo in; fine-tune a model on your "
            "folder first",
        )
        return cls(root, data_dir)

    # -- reading --

    def _load(self) -> list[Correction]:
        data = read_record(self.path, CORRECTIONS_FORMAT, "list of corrections", CorrectionError)
        if data is None:
            return []
        try:
            items = data.get("corrections")
            if not isinstance(items, list):
                raise ValueError("no list")
            return [Correction.from_dict(item) for item in items]
        except ValueError:
            raise CorrectionError(
                f"The list of corrections '{printable_path(self.path)}' is damaged; remove it to start a "
                "new one (no photo is lost: the copies already made stay in the dataset folder)."
            ) from None

    def _save(self, entries: list[Correction]) -> None:
        data = {
            "format": CORRECTIONS_FORMAT,
            "dataset": str(self.root),
            "corrections": [entry.to_dict() for entry in entries],
        }
        write_record(self.path, data, "the list of corrections", CorrectionError)
        self._entries = entries

    def entries(self) -> list[Correction]:
        """The corrections since the last training, oldest first."""
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def has_splits(self) -> bool:
        """Whether the dataset has the train/val folder layout (corrections then go into train/)."""
        return train_folder(self.root) is not None

    def class_folder(self, label: str) -> Path:
        """The training folder of ``label``: ``root/train/<label>`` for a train/val dataset, else
        ``root/<label>``; an existing class's own folder, or a new sanitised name.

        Raises :class:`CorrectionError` for a name that cannot be a class folder.
        """
        train = train_folder(self.root)
        return class_folder_in(self.root if train is None else train, label, train is not None)

    # -- changing --

    def add(self, photo: Path, label: str, predicted: str) -> Correction:
        """Copy ``photo`` into the training folder of ``label`` (atomic, under a free name) and remember it.

        A photo corrected again replaces its earlier correction (whose unchanged copy is removed):
        a photo has one right class. A photo that is already one of the dataset's files is refused
        (a copy would give it two labels; the review's *Move to class* is for those).
        """
        photo = Path(photo)
        shown = printable_path(photo)
        try:
            load_image(photo)
        except ImageLoadError as err:
            raise CorrectionError(f"Cannot use '{shown}' as a correction: {err.reason}.") from None
        resolved = paths.resolved_path(photo)
        if resolved.is_relative_to(self.root):
            raise CorrectionError(
                f"'{shown}' is already in the dataset folder; a copy would give it two classes, so move "
                "it with the review of the training data instead."
            )
        folder = self.class_folder(label)
        entries = self._load()
        same = [e for e in entries if e.photo == resolved]
        for earlier in same:
            if earlier.label == label and _digest_of(earlier.copy) == earlier.digest:
                self._entries = entries
                return earlier  # already corrected to this class: nothing to do
        created = not folder.is_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            copy, digest = _place_copy(photo, folder)
        except UserFileError as err:
            raise CorrectionError(f"Cannot use '{shown}' as a correction: {err.reason}.") from None
        except OSError as err:
            raise CorrectionError(
                f"Cannot put a copy of the photo into the class folder '{printable_path(folder)}': "
                f"{output_reason(err)}."
            ) from None
        correction = Correction(resolved, copy, label, predicted, digest, _now(), created)
        kept = [e for e in entries if e.photo != resolved]
        try:
            self._save([*kept, correction])
        except CorrectionError:
            _remove_copy(correction)  # nothing recorded: nothing of ours left behind
            raise
        for earlier in same:
            _remove_copy(earlier)
        return correction

    def undo(self, correction: Correction | None = None) -> Correction:
        """Forget a correction (the last one by default) and delete its copy if it is unchanged.

        The returned correction's ``note`` is ``""`` when the copy was deleted, else the sentence
        saying why it was left (changed since, or already gone). The user's photo is never touched.
        """
        entries = self._load()
        if correction is None:
            if not entries:
                raise CorrectionError("There is no correction to undo.")
            target = entries[-1]
        else:
            matches = [e for e in entries if e.copy == correction.copy and e.photo == correction.photo]
            if not matches:
                raise CorrectionError(
                    f"The correction of '{printable_path(correction.photo)}' is not in the list any more "
                    "(undone or cleared already)."
                )
            target = matches[-1]
        self._save([e for e in entries if e is not target])
        return dataclasses.replace(target, note=_remove_copy(target))

    def clear(self) -> None:
        """Forget every correction (after a retrain: the copies are now part of the data)."""
        self._load()  # a damaged list is said, not silently replaced
        self._save([])


def _remove_copy(correction: Correction) -> str:
    """Delete the copy if it is still the file we wrote; ``""``, or why it was left."""
    copy = correction.copy
    shown = printable_path(copy)
    current = _digest_of(copy)
    if current is None:
        return f"The copy '{shown}' was already gone."
    if current != correction.digest:
        return f"The copy '{shown}' was changed since it was made, so it was left where it is."
    try:
        copy.unlink()
    except OSError as err:
        return f"The copy '{shown}' could not be deleted ({output_reason(err)}), so it is still there."
    if correction.created_folder:
        with contextlib.suppress(OSError):
            copy.parent.rmdir()  # only when empty
    return ""
