"""Sort classified files into one folder per class: plan first (for ``--dry-run``), then apply.

Nothing is ever overwritten: a name already taken (on disk, or earlier in the same plan) gets a
``-1``, ``-2`` … suffix, and applying re-checks with exclusive creation, so a file that appears
between planning and applying is not clobbered either. Planning again after a completed sort
skips files already in place (a link to the same file, an identical copy), so re-running a
sort, e.g. after ``--resume``, does not duplicate them.
"""

from __future__ import annotations

import errno
import filecmp
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from resnet_gui.core.batch.report import display_path
from resnet_gui.core.batch.rows import BatchRow

__all__ = [
    "SORT_MODES",
    "UNSURE_FOLDER",
    "SortAction",
    "SortReport",
    "apply_sort",
    "class_folder_name",
    "format_plan",
    "plan_sort",
]

SORT_MODES = ("copy", "link", "move")
UNSURE_FOLDER = "_unsure"
_UNSAFE = set('/\\:*?"<>|')


@dataclass(frozen=True)
class SortAction:
    """Put ``source`` at ``destination`` by copying, symlinking or moving it."""

    source: Path
    destination: Path
    mode: str
    label: str
    probability: float


@dataclass
class SortReport:
    """What :func:`apply_sort` did: actions done (with their final destination) and failures."""

    done: list[SortAction] = field(default_factory=list)
    failed: list[tuple[SortAction, str]] = field(default_factory=list)


def class_folder_name(label: str) -> str:
    """A label as a folder name on any OS: no separators or reserved characters, never ``.``/``..``."""
    name = "".join("_" if ch in _UNSAFE or ord(ch) < 32 else ch for ch in label).strip().rstrip(".")
    if not name or set(name) <= {"."}:
        return "_unnamed"
    return name


def _suffixed(path: Path, number: int) -> Path:
    return path if number == 0 else path.with_name(f"{path.stem}-{number}{path.suffix}")


def _already_there(source: Path, destination: Path, mode: str) -> bool:
    """Whether ``destination`` is already this file (a previous run of the same sort)."""
    try:
        if mode == "link":
            return destination.is_symlink() and os.path.samefile(destination, source)
        return (
            not destination.is_symlink()
            and destination.stat().st_size == source.stat().st_size
            and filecmp.cmp(source, destination, shallow=False)
        )
    except OSError:
        return False


def plan_sort(
    rows: Iterable[BatchRow],
    dest: str | os.PathLike[str],
    mode: str = "copy",
    min_confidence: float | None = None,
) -> list[SortAction]:
    """Where each classified file goes: ``dest/<top-1 class>/<name>``, or ``dest/_unsure/<name>``
    when it is *not sure* under ``min_confidence`` (:meth:`BatchRow.not_sure`: the rule of the
    results' ``not_sure`` column, and what a results file says for rows read back from one).

    Failed rows are left out (they have no class), and so are sources that no longer exist (moved
    by an earlier ``move`` sort) and files already in place. Only reads the disk.
    """
    if mode not in SORT_MODES:
        raise ValueError(f"sort mode must be one of {SORT_MODES}, not {mode!r}")
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise ValueError("min_confidence must be between 0 and 1")
    dest = Path(dest)
    taken: set[Path] = set()
    plan = []
    for row in rows:
        top1 = row.top1
        if top1 is None or not (row.path.exists() or row.path.is_symlink()):
            continue
        unsure = bool(row.not_sure(min_confidence))
        folder = dest / (UNSURE_FOLDER if unsure else class_folder_name(top1.label))
        wanted = folder / row.path.name
        for number in range(1_000_000):
            candidate = _suffixed(wanted, number)
            if candidate in taken:
                continue
            if candidate.exists() or candidate.is_symlink():
                if _already_there(row.path, candidate, mode):
                    break
                continue
            taken.add(candidate)
            plan.append(SortAction(row.path, candidate, mode, top1.label, top1.probability))
            break
    return plan


def format_plan(plan: Iterable[SortAction]) -> list[str]:
    """One line per action, for ``--dry-run``; names shown escaped (:func:`display_path`), since a
    control character in a file or class name would otherwise act on the user's terminal."""
    return [
        f"{action.mode:<4} {display_path(action.source)} -> {display_path(action.destination)}"
        for action in plan
    ]


def _copy_exclusive(source: Path, destination: Path) -> None:
    """Copy contents and times; fails with FileExistsError rather than overwrite.

    A copy that fails half-way is removed, so a retry does not see a partial file as taken.
    """
    with open(source, "rb") as reader, open(destination, "xb") as writer:
        try:
            shutil.copyfileobj(reader, writer, 1024 * 1024)
        except BaseException:
            writer.close()
            destination.unlink(missing_ok=True)
            raise
    shutil.copystat(source, destination)


def _move_exclusive(source: Path, destination: Path) -> None:
    """A rename that never replaces: hard link then unlink, or copy then unlink across devices."""
    try:
        os.link(source, destination, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EACCES):
            raise
        if source.is_symlink():
            os.symlink(os.readlink(source), destination)
        else:
            _copy_exclusive(source, destination)
    os.unlink(source)


def _apply_one(action: SortAction, destination: Path) -> None:
    if action.mode == "copy":
        _copy_exclusive(action.source, destination)
    elif action.mode == "link":
        os.symlink(os.path.abspath(action.source), destination)
    else:
        _move_exclusive(action.source, destination)


def apply_sort(plan: Iterable[SortAction]) -> SortReport:
    """Carry out a plan. A file that cannot be copied/linked/moved is reported, never raised.

    If a destination was taken since planning, the next free suffix is used instead.
    """
    report = SortReport()
    for action in plan:
        try:
            action.destination.parent.mkdir(parents=True, exist_ok=True)
            for number in range(1_000_000):
                destination = _suffixed(action.destination, number)
                try:
                    _apply_one(action, destination)
                except FileExistsError:
                    continue
                break
            if destination != action.destination:
                action = SortAction(action.source, destination, action.mode, action.label, action.probability)
            report.done.append(action)
        except OSError as error:
            report.failed.append((action, (error.strerror or str(error)).lower()))
    return report
