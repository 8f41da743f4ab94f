"""The one guard every command passes before it writes where the user said (``--out``…).

Two rules, checked once here rather than by each writer:

* **Nothing of the user's is replaced by mistake.** An output path that is one of the run's own
  inputs (a photo, the base model) is refused; so is a model the app manages (imported or
  downloaded weights) and any existing file that is not a result of the same kind (a batch
  ``--out`` pointing at a photo, a bundle ``--out`` on someone's JSON), unless the user passes
  ``--overwrite``. A result of the same kind (an earlier run's CSV, an earlier bundle) is ours to
  replace.
* **One writer at a time.** Each output is locked (an exclusive ``flock`` on a hidden lock file
  beside it) for the whole run; a second run on the same output is refused at once instead of
  interleaving its rows with the first's.

:data:`OUTPUT_KINDS` is the table of what can be written and how an existing file of that kind is
recognised; the CLI names a kind per option. No Qt, no torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from resnet_gui.core import paths
from resnet_gui.core.errors import OutputBusyError, OutputError, OutputExistsError
from resnet_gui.core.formats import (
    BUNDLE_FORMAT,
    CHECKPOINT_FORMAT,
    EXPORT_FORMAT,
    REPORT_FORMAT,
    VIDEO_RESULTS_FORMAT,
)
from resnet_gui.core.text import printable_path

__all__ = [
    "OUTPUT_KINDS",
    "PNG_SOFTWARE",
    "OutputKind",
    "OutputTarget",
    "check_outputs",
    "claim_outputs",
    "looks_like",
]

#: The PNG ``Software`` text our images carry, so a later run knows the file is ours to replace.
PNG_SOFTWARE = "resnet-gui"
_SNIFF_BYTES = 1 << 16
_MAX_HEADER = 16 << 20
#: What recognising our JSON files (a bundle's sidecar, an evaluate report) reads of one, at most.
#: They put their ``format`` tag first, so the start tells them at any size, and a huge file of
#: someone else's is never read whole. (Reports written before they had a tag are told by their
#: keys, which a report of up to about this size holds in full.)
JSON_SNIFF_BYTES = 1 << 20
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_REPORT_KEYS = frozenset({"accuracy", "confusion_matrix", "per_class"})


def _head(path: Path, size: int = _SNIFF_BYTES) -> bytes:
    from resnet_gui.core.userfiles import UserFileError, open_user_file

    try:
        with open_user_file(path) as handle:
            return handle.read(size)
    except (UserFileError, OSError):
        return b""


def _safetensors_metadata(path: Path) -> dict[str, object] | None:
    head = _head(path, 8)
    if len(head) != 8:
        return None
    (length,) = struct.unpack("<Q", head)
    if not 2 <= length <= _MAX_HEADER:
        return None
    data = _head(path, 8 + length)[8:]
    try:
        header = json.loads(data)
    except ValueError:
        return None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return metadata if isinstance(metadata, dict) else None


def _is_bundle(path: Path) -> bool:
    metadata = _safetensors_metadata(path)
    return metadata is not None and metadata.get("format") == BUNDLE_FORMAT


def _is_checkpoint(path: Path) -> bool:
    metadata = _safetensors_metadata(path)
    return metadata is not None and metadata.get("format") == CHECKPOINT_FORMAT


def _json_document(path: Path) -> object:
    data = _head(path, _MAX_HEADER)
    try:
        return json.loads(data)
    except ValueError:
        return None


def leading_members(data: bytes) -> dict[str, object]:
    """The members of a JSON object that are complete within ``data``, the start of a document.

    A prefix of a file is not a JSON document, so the object is read member by member, and the
    reading stops at the first member the prefix cuts (or at anything malformed); ``{}`` for data
    that does not start an object.
    """
    try:
        text = data.decode(json.detect_encoding(data), "replace")
    except LookupError:
        return {}
    decoder = json.JSONDecoder()
    members: dict[str, object] = {}

    def skip_space(index: int) -> int:
        return _JSON_SPACE.match(text, index).end()  # type: ignore[union-attr]  # it matches anywhere

    index = skip_space(1 if text.startswith("\ufeff") else 0)
    if not text.startswith("{", index):
        return members
    index = skip_space(index + 1)
    while text.startswith('"', index):
        try:
            key, index = decoder.raw_decode(text, index)
            index = skip_space(index)
            if not text.startswith(":", index):
                break
            value, index = decoder.raw_decode(text, skip_space(index + 1))
        except ValueError:
            break
        index = skip_space(index)
        if index >= len(text) or text[index] not in ",}":
            break  # cut by the end of the prefix (a cut number still parses): not trusted
        members[key] = value
        if text[index] == "}":
            break
        index = skip_space(index + 1)
    return members


def _json_members(path: Path) -> dict[str, object]:
    """The leading members of a JSON file, from its first :data:`JSON_SNIFF_BYTES` only."""
    return leading_members(_head(path, JSON_SNIFF_BYTES))


def _is_sidecar(path: Path) -> bool:
    return _json_members(path).get("format") == BUNDLE_FORMAT


def _is_export_sidecar(path: Path) -> bool:
    """The JSON beside an exported model: its ``resnet_gui_format`` member comes first."""
    return _json_members(path).get("resnet_gui_format") == EXPORT_FORMAT


def _is_exported_onnx(path: Path) -> bool:
    """An ONNX file of ``resnet-gui export``: its metadata (at the end of the protobuf) names our format."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            if handle.read(1) != b"\x08":  # ModelProto starts with its ir_version field
                return False
            handle.seek(max(0, size - _SNIFF_BYTES * 4))
            tail = handle.read()
    except OSError:
        return False
    return b"resnet_gui_format" in tail and EXPORT_FORMAT.encode() in tail


def _is_exported_torchscript(path: Path) -> bool:
    """A TorchScript archive of ``resnet-gui export`` (its extra/metadata.json names our format)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist() if name.endswith("/extra/metadata.json")]
            return bool(names) and EXPORT_FORMAT.encode() in archive.read(names[0])[:_MAX_HEADER]
    except (OSError, zipfile.BadZipFile, KeyError):
        return False


def _is_report(path: Path) -> bool:
    members = _json_members(path)
    return members.get("format") == REPORT_FORMAT or members.keys() >= _REPORT_KEYS


def _first_line(path: Path) -> bytes:
    return _head(path).split(b"\n", 1)[0].strip()


def _is_batch_csv(path: Path) -> bool:
    import csv

    fields = next(csv.reader([_first_line(path).decode("utf-8", "replace")]), [])
    return fields[:2] == ["path", "error"]


def _is_record(line: bytes) -> bool:
    try:
        record = json.loads(line.rstrip(b","))
    except ValueError:
        return False
    return isinstance(record, dict) and "path" in record


def _is_batch_jsonl(path: Path) -> bool:
    return _is_record(_first_line(path))


def _is_batch_json(path: Path) -> bool:
    lines = [line.strip() for line in _head(path).splitlines() if line.strip()]
    if not lines or lines[0] != b"[":
        return False
    return len(lines) == 1 or lines[1] == b"]" or _is_record(lines[1])


def _is_video_csv(path: Path) -> bool:
    import csv

    fields = next(csv.reader([_first_line(path).decode("utf-8", "replace")]), [])
    return fields[:2] == ["frame", "time_s"]


def _is_video_jsonl(path: Path) -> bool:
    try:
        record = json.loads(_first_line(path))
    except ValueError:
        return False
    return isinstance(record, dict) and "frame" in record and "time_s" in record


def _is_video_json(path: Path) -> bool:
    return _json_members(path).get("format") == VIDEO_RESULTS_FORMAT


def _is_our_png(path: Path) -> bool:
    from PIL import Image

    from resnet_gui.core.userfiles import UserFileError, open_user_file

    try:
        with open_user_file(path) as handle, Image.open(handle) as image:
            return image.format == "PNG" and image.info.get("Software") == PNG_SOFTWARE
    except (UserFileError, OSError, ValueError, SyntaxError):
        return False


def _is_heatmap_npy(path: Path) -> bool:
    import io

    import numpy as np

    head = _head(path, 4096)
    try:
        stream = io.BytesIO(head)
        version = np.lib.format.read_magic(stream)
        shape, fortran, dtype = np.lib.format._read_array_header(stream, version)  # type: ignore[attr-defined]
    except (ValueError, OSError, SyntaxError):
        return False
    return len(shape) == 2 and not fortran and dtype == np.dtype("<f4")


#: The header of ``evaluate --label-issues``' table (resnet_gui.cli_training writes it).
LABEL_ISSUES_COLUMNS = (
    "path",
    "split",
    "given",
    "suggested",
    "given_probability",
    "suggested_probability",
    "quality",
    "kind",
)


def _is_label_issues_csv(path: Path) -> bool:
    import csv

    fields = next(csv.reader([_first_line(path).decode("utf-8", "replace")]), [])
    return tuple(fields) == LABEL_ISSUES_COLUMNS


def _beside_our_report(path: Path) -> bool:
    """A file of an evaluate report folder whose report.json is ours (the set is replaced together)."""
    return _is_report(path.with_name("report.json"))


def _is_evaluate_csv(path: Path) -> bool:
    return _beside_our_report(path)


def _is_evaluate_png(path: Path) -> bool:
    return _is_our_png(path) or _beside_our_report(path)


@dataclass(frozen=True)
class OutputKind:
    """Something a command writes, and how to tell an existing file of that kind (ours to replace)."""

    name: str
    description: str  # "a results file of `resnet-gui batch`": completes "it is not …"
    recognise: Callable[[Path], bool]
    streams: bool = False  # written in place as it goes, so a pipe or a device (/dev/stdout) works too


OUTPUT_KINDS: dict[str, OutputKind] = {
    kind.name: kind
    for kind in (
        OutputKind("batch-csv", "a CSV results file of `resnet-gui batch`", _is_batch_csv, streams=True),
        OutputKind("batch-jsonl", "a JSON Lines results file of `resnet-gui batch`", _is_batch_jsonl, True),
        OutputKind("batch-json", "a JSON results file of `resnet-gui batch`", _is_batch_json, streams=True),
        OutputKind("video-csv", "a CSV results file of `resnet-gui classify-video`", _is_video_csv),
        OutputKind(
            "video-jsonl", "a JSON Lines results file of `resnet-gui classify-video`", _is_video_jsonl
        ),
        OutputKind("video-json", "a JSON results file of `resnet-gui classify-video`", _is_video_json),
        OutputKind("overlay-png", "a picture written by `resnet-gui explain`", _is_our_png),
        OutputKind("heatmap-npy", "a heat map written by `resnet-gui explain`", _is_heatmap_npy),
        OutputKind("bundle", "a model fine-tuned by this app", _is_bundle),
        OutputKind("bundle-sidecar", "the description of a fine-tuned model", _is_sidecar),
        OutputKind("checkpoint", "a training checkpoint of this app", _is_checkpoint),
        OutputKind("report-json", "a report of `resnet-gui evaluate`", _is_report),
        OutputKind("report-csv", "a table of `resnet-gui evaluate`", _is_evaluate_csv),
        OutputKind("report-png", "a confusion matrix of `resnet-gui evaluate`", _is_evaluate_png),
        # Newer than the report: no untagged one of ours exists, so only the tag tells it.
        OutputKind("report-reliability-png", "a reliability diagram of `resnet-gui evaluate`", _is_our_png),
        OutputKind(
            "label-issues-csv", "a table of `resnet-gui evaluate --label-issues`", _is_label_issues_csv
        ),
        OutputKind("export-onnx", "an ONNX model written by `resnet-gui export`", _is_exported_onnx),
        OutputKind(
            "export-torchscript",
            "a TorchScript model written by `resnet-gui export`",
            _is_exported_torchscript,
        ),
        OutputKind(
            "export-sidecar", "the description of a model written by `resnet-gui export`", _is_export_sidecar
        ),
    )
}


@dataclass(frozen=True)
class OutputTarget:
    """One path a run will write, of a kind of :data:`OUTPUT_KINDS`, given by ``option`` (for messages)."""

    path: Path
    kind: str
    option: str = "--out"


def looks_like(path: Path) -> str:
    """A few words on what a file seems to be, from its first bytes (for a refusal's message)."""
    head = _head(path, 16)
    signatures = (
        (b"\xff\xd8\xff", "a JPEG photo"),
        (b"\x89PNG", "a PNG image"),
        (b"GIF8", "a GIF image"),
        (b"BM", "a BMP image"),
        (b"II*\x00", "a TIFF image"),
        (b"MM\x00*", "a TIFF image"),
        (b"PK\x03\x04", "a PyTorch checkpoint or another zip archive"),
        (b"\x80", "a pickled Python object (a PyTorch checkpoint?)"),
        (b"\x93NUMPY", "a NumPy array"),
    )
    for magic, words in signatures:
        if head.startswith(magic):
            return words
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if _safetensors_metadata(path) is not None or (len(head) >= 9 and head[8:9] == b"{"):
        return "a model's weights (safetensors)"
    if not head:
        return "an empty or unreadable file"
    return "some other data"


def _managed_folders() -> list[Path]:
    """Folders whose files are the models the app itself uses (imported and downloaded weights)."""
    return [paths.imported_weights_dir(), paths.checkpoints_dir()]


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.is_relative_to(folder.resolve())
    except OSError:
        return False


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _check(target: OutputTarget, inputs: Sequence[str | os.PathLike[str]], overwrite: bool) -> None:
    path = target.path
    shown = printable_path(path)
    if path.is_dir():
        raise OutputError(f"{target.option} '{shown}' is a folder; give a file name (e.g. inside it).")
    if not (path.exists() or path.is_symlink()):
        return
    kind = OUTPUT_KINDS[target.kind]
    try:
        st = path.stat()
    except OSError:
        return  # a dangling link: replacing it loses nothing
    if not stat.S_ISREG(st.st_mode):
        if kind.streams:
            return  # e.g. --out /dev/stdout
        raise OutputError(f"{target.option} '{shown}' is not a regular file; give a file name.")
    identity = _identity(path)
    if identity is not None and any(_identity(item) == identity for item in inputs):
        raise OutputExistsError(
            f"{target.option} '{shown}' is one of this run's own inputs; writing there would destroy it. "
            f"Choose another {target.option}."
        )
    if overwrite:
        return
    resolved = path.resolve()
    if any(_inside(resolved, folder) for folder in _managed_folders()):
        raise OutputExistsError(
            f"{target.option} '{shown}' is a model the app uses ({looks_like(path)} in its weights "
            f"folder); writing there would replace it. Choose another {target.option}, or add --overwrite "
            "if you really mean to replace it."
        )
    if st.st_size and not kind.recognise(path):
        raise OutputExistsError(
            f"{target.option} '{shown}' already exists and is not {kind.description} (it looks like "
            f"{looks_like(path)}). Choose another {target.option}, or add --overwrite to replace it."
        )


def _is_special(path: Path) -> bool:
    """An existing output that is not a regular file (a pipe, a device): written unlocked."""
    try:
        return not stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name[:200]}.lock")


class _Lock:
    """An exclusive, non-blocking lock on a hidden file beside an output, removed on release."""

    def __init__(self, target: OutputTarget) -> None:
        self.target = target
        self.path = _lock_path(target.path.absolute())
        self.fd: int | None = None

    def acquire(self) -> None:
        shown = printable_path(self.target.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            from resnet_gui.core.atomic import output_reason

            raise OutputError(f"Cannot write '{shown}': {output_reason(error)}.") from None
        for _ in range(20):  # a holder may unlink the file between our open and our lock: retry
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                from resnet_gui.core.atomic import output_reason

                raise OutputError(f"Cannot write '{shown}': {output_reason(error)}.") from None
            if not _try_lock(fd):
                holder = _read_pid(fd)
                os.close(fd)
                who = f" (process {holder})" if holder else ""
                raise OutputBusyError(
                    f"Another resnet-gui run{who} is writing '{shown}' right now. Wait for it to finish, "
                    f"or choose another {self.target.option}."
                )
            if _identity(self.path) == _fd_identity(fd):
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
                self.fd = fd
                return
            os.close(fd)
        raise OutputBusyError(f"Cannot lock '{shown}': other runs keep taking it. Try again.")

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self.fd)
        self.fd = None


def _fd_identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino)


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except (OSError, AttributeError):
        return ""
    return text if text.isdigit() else ""


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True  # a file system without locks: write unguarded rather than not at all
    return True


def check_outputs(
    targets: Sequence[OutputTarget],
    *,
    inputs: Sequence[str | os.PathLike[str]] = (),
    overwrite: bool = False,
) -> None:
    """Refuse now any target :func:`claim_outputs` would refuse (to fail before long work), no lock."""
    for target in targets:
        _check(target, inputs, overwrite)


@contextlib.contextmanager
def claim_outputs(
    targets: Sequence[OutputTarget],
    *,
    inputs: Sequence[str | os.PathLike[str]] = (),
    overwrite: bool = False,
) -> Iterator[None]:
    """Check every target (see the module's rules), then hold a lock on each while the body runs.

    Raises :class:`OutputExistsError` for an output that must not be replaced,
    :class:`OutputBusyError` when another run holds one, :class:`OutputError` when a path cannot
    be written at all (a folder given for a file, a folder that cannot be created).
    """
    check_outputs(targets, inputs=inputs, overwrite=overwrite)
    locks: list[_Lock] = []
    try:
        for target in targets:
            if _is_special(target.path):
                continue
            lock = _Lock(target)
            lock.acquire()
            locks.append(lock)
        yield
    finally:
        for lock in reversed(locks):
            lock.release()
