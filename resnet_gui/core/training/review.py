"""Review of the training data: top losses, possible label errors, and the user's decisions on them.

* :func:`top_losses`: the most confidently wrong photos of an evaluation (the validation split's,
  for a bundle), worst first: :class:`~resnet_gui.core.training.evaluate.WrongPrediction` rows of
  :func:`~resnet_gui.core.training.evaluate.evaluate`, ranked by their loss.
* :func:`find_label_issues`: **confident learning** (Northcutt et al., 2021) with ``cleanlab``: a
  photo whose given label the out-of-sample probabilities strongly dispute. The validation photos'
  probabilities are the bundle's own (its classifier on the photo's features, divided by its
  temperature: what ``classify`` says); the training photos' come from 5-fold cross-validation
  (``cleanlab.count.estimate_cv_predicted_probabilities``) of a scikit-learn logistic regression
  (standardised features) on the frozen backbone's features, so no training photo is scored by a
  model that saw its label. For a head-mode bundle the backbone is the base model's, untouched
  by the training: those features are exactly the ones training cached. (For a partial/full
  bundle the backbone itself was trained on the training photos, so their cross-validated
  probabilities are only nearly out-of-sample.) With a
  :class:`~resnet_gui.core.training.features.FeatureCache`, the features are taken photo by photo
  from an earlier review or from the head-mode training's own entries (so a review right after a
  fine-tune runs no backbone pass), and kept for the next review.
* :class:`ReviewDecisions`: per photo, *Move to class…*, *Leave out* or *Keep*, persisted in the
  dataset's record folder of the app's data folder (``datasets/<key>/review.json``, beside the
  corrections of :mod:`resnet_gui.core.corrections`): they survive restarts, and nothing in the
  user's folder changes until the plan is applied.
* :func:`plan_review` → :class:`ReviewPlan` (every move, source → destination, all inside the
  dataset folder; shown to the user first), :func:`apply_review` → :class:`AppliedReview` (a journal
  persisted before each move, so even a crash midway can be undone: :func:`last_applied_review`),
  :func:`undo_review` (moves back; never deletes; refuses when a place has been taken since).

*Move to class* moves the photo into that class's folder (the same split folder for a train/val
dataset); *Leave out* moves it into ``_left_out/<class>/`` at the dataset's root, which the scan
never reads as a class. Moves never replace a file (Sort into Folders' exclusive move: a hard
link, then the unlink; a copy across file systems); a name already taken gets ``-1``, ``-2`` …
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_gui.core.atomic import output_reason
from resnet_gui.core.corrections import (
    LEFT_OUT_FOLDER,
    class_folder_in,
    dataset_record_folder,
    read_record,
    sanitised_class_folder,
    train_folder,
    write_record,
)
from resnet_gui.core.errors import ResNetGuiError
from resnet_gui.core.text import printable, printable_path
from resnet_gui.core.training.evaluate import EvaluationReport, WrongPrediction

if TYPE_CHECKING:
    import torch

    from resnet_gui.core.models import LoadedModel
    from resnet_gui.core.training.events import Progress
    from resnet_gui.core.training.features import FeatureCache
    from resnet_gui.core.training.split import Split

__all__ = [
    "ACTIONS",
    "REVIEW_FILE",
    "AppliedReview",
    "Decision",
    "LabelIssue",
    "ReviewDatasetMovedError",
    "ReviewDecisions",
    "ReviewError",
    "ReviewFileGoneError",
    "ReviewFolderError",
    "ReviewMove",
    "ReviewPlan",
    "apply_review",
    "cross_validated_probabilities",
    "find_label_issues",
    "issues_from_probabilities",
    "iter_label_issues",
    "label_issues_csv",
    "last_applied_review",
    "plan_review",
    "recorded_split",
    "top_losses",
    "undo_review",
]

REVIEW_FORMAT = "resnet-gui-review/1"
JOURNAL_FORMAT = "resnet-gui-review-journal/1"
REVIEW_FILE = "review.json"
JOURNAL_FILE = "review-journal.json"
#: What the user can decide for a photo of the review.
ACTIONS = ("move", "leave_out", "keep")
#: Folds of the training photos' cross-validation.
CV_FOLDS = 5


class ReviewError(ResNetGuiError):
    """A review that cannot be planned, applied or undone: one sentence."""

    exit_code = 2


class ReviewDatasetMovedError(ReviewError):
    """The dataset folder is not where the model or the decisions say (moved or deleted since)."""


class ReviewFileGoneError(ReviewError):
    """A photo to move back is gone since (moved or deleted by someone else)."""


class ReviewFolderError(ReviewError):
    """A folder of the dataset refuses the move (read-only, full disk…); ``applied``: what was done."""

    def __init__(self, message: str, applied: AppliedReview | None = None) -> None:
        super().__init__(message)
        self.applied = applied


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- top losses -------------------------------------------------------------------------------


def top_losses(report: EvaluationReport, limit: int | None = None) -> list[WrongPrediction]:
    """The evaluation's wrong photos, worst first: highest loss (lowest probability of the given
    class), then highest confidence in the wrong one. ``report.most_confident_wrong`` holds as
    many as the evaluation's ``top_wrong`` asked for."""
    ranked = sorted(
        report.most_confident_wrong, key=lambda w: (w.true_probability, -w.confidence, str(w.path))
    )
    return ranked if limit is None else ranked[:limit]


def loss_of(wrong: WrongPrediction) -> float:
    """The cross-entropy of a wrong prediction: ``-log p(given class)``."""
    return -math.log(max(wrong.true_probability, 1e-12))


# --- label issues -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelIssue:
    """A photo whose given label the out-of-sample probabilities dispute."""

    path: Path
    given: str
    suggested: str
    given_probability: float
    suggested_probability: float
    split: str
    """``train`` (cross-validated) or ``val`` (the model's own probabilities)."""
    quality: float
    """cleanlab's label quality (self-confidence: the probability of the given label); lower is
    more likely wrong. The list is ranked by it."""


def cross_validated_probabilities(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    folds: int = CV_FOLDS,
    seed: int = 0,
    num_classes: int | None = None,
) -> np.ndarray | None:
    """Out-of-sample class probabilities of every row: K-fold cross-validation of a logistic
    regression on standardised features (``cleanlab.count.estimate_cv_predicted_probabilities``).

    ``folds`` is lowered to the smallest class's count; ``None`` when a class (of ``num_classes``,
    default: up to the largest label) has fewer than two photos (no fold could hold it out).
    """
    from cleanlab.count import estimate_cv_predicted_probabilities
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=num_classes or 0)
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < 2 or len(present) != len(counts):
        return None
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    return np.asarray(
        estimate_cv_predicted_probabilities(
            np.asarray(features, dtype=np.float64),
            labels,
            clf=clf,
            cv_n_folds=int(min(folds, present.min())),
            seed=seed,
        ),
        dtype=np.float64,
    )


def issues_from_probabilities(
    paths: Sequence[Path],
    labels: Sequence[int],
    probabilities: np.ndarray,
    classes: Sequence[str],
    splits: Sequence[str],
) -> list[LabelIssue]:
    """The label issues cleanlab finds (``cleanlab.filter.find_label_issues``, pruned by noise
    rate), ranked by label quality (self-confidence), least trustworthy first."""
    from cleanlab.filter import find_label_issues as cleanlab_issues
    from cleanlab.rank import get_label_quality_scores

    given = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probabilities, dtype=np.float64)
    if len(given) == 0 or len(np.unique(given)) < 2:
        return []
    probs = probs / probs.sum(axis=1, keepdims=True)
    flagged = cleanlab_issues(given, probs, n_jobs=1)
    quality = get_label_quality_scores(given, probs, method="self_confidence")
    issues = []
    for found in np.flatnonzero(flagged):
        index = int(found)
        row = probs[index].copy()
        row[given[index]] = -1.0
        other = int(row.argmax())
        issues.append(
            LabelIssue(
                path=Path(paths[index]),
                given=classes[given[index]],
                suggested=classes[other],
                given_probability=float(probs[index, given[index]]),
                suggested_probability=float(probs[index, other]),
                split=splits[index],
                quality=float(quality[index]),
            )
        )
    return sorted(issues, key=lambda issue: (issue.quality, str(issue.path)))


def label_issues_csv(
    issues: Sequence[LabelIssue], losses: Sequence[WrongPrediction] = (), losses_split: str = ""
) -> str:
    """The table of ``evaluate --label-issues``: the label issues (``kind`` ``label_issue``), then
    the top losses (``top_loss``, of the evaluated ``losses_split``), cells escaped for spreadsheets."""
    from resnet_gui.core.csvcells import csv_line
    from resnet_gui.core.outputs import LABEL_ISSUES_COLUMNS

    lines = [csv_line(LABEL_ISSUES_COLUMNS)]
    for issue in issues:
        lines.append(
            csv_line(
                [
                    str(issue.path),
                    issue.split,
                    issue.given,
                    issue.suggested,
                    f"{issue.given_probability:.6f}",
                    f"{issue.suggested_probability:.6f}",
                    f"{issue.quality:.6f}",
                    "label_issue",
                ]
            )
        )
    for wrong in losses:
        lines.append(
            csv_line(
                [
                    str(wrong.path),
                    losses_split,
                    wrong.true_label,
                    wrong.predicted_label,
                    f"{wrong.true_probability:.6f}",
                    f"{wrong.confidence:.6f}",
                    f"{wrong.true_probability:.6f}",
                    "top_loss",
                ]
            )
        )
    return "".join(lines)


def recorded_split(loaded: LoadedModel) -> Split:
    """The split a bundle records, resolved against its dataset folder (still there)."""
    import json

    from resnet_gui.core.metadata import metadata_data_root
    from resnet_gui.core.training.split import Split

    root = metadata_data_root(loaded.metadata)
    stored = loaded.metadata.get("split")
    if root is None or not stored:
        raise ReviewError(
            "This model records no dataset folder and split (it was not fine-tuned by this app), so "
            "there is no training data to review."
        )
    if not root.is_dir():
        raise ReviewDatasetMovedError(
            f"The dataset folder '{printable_path(root)}' this model was trained on has moved or been "
            "deleted since the training; put it back, or fine-tune on its new place first."
        )
    try:
        return Split.from_dict(json.loads(stored), root)
    except (ValueError, TypeError, KeyError):
        raise ReviewError(
            "The model's recorded split is damaged, so its training data cannot be reviewed."
        ) from None


def _class_columns(categories: Sequence[str], classes: Sequence[str]) -> list[int]:
    """For each split class, the model output that is it (the same names, in any order)."""
    index = {name: position for position, name in enumerate(categories)}
    missing = [name for name in classes if name not in index]
    if missing:
        raise ReviewError(
            f"The model has no class {', '.join(printable(name) for name in missing[:5])} of its "
            "recorded split, so it cannot review that data."
        )
    return [index[name] for name in classes]


def iter_label_issues(
    model: str | Path | LoadedModel,
    split: Split | None = None,
    *,
    device: str = "auto",
    batch_size: int = 32,
    workers: int = 2,
    folds: int = CV_FOLDS,
    seed: int = 0,
    feature_cache: FeatureCache | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Iterator[Progress | list[LabelIssue]]:
    """:func:`find_label_issues`, yielding :class:`Progress` (``features``) and the list last.

    Nothing is yielded after a cancel (``cancel()`` true) but the progress so far.
    """
    import torch

    from resnet_gui.core.engine import select_device
    from resnet_gui.core.metadata import metadata_temperature
    from resnet_gui.core.models import LoadedModel, load_model
    from resnet_gui.core.training.dataset import file_digest
    from resnet_gui.core.training.events import forward_progress
    from resnet_gui.core.training.features import (
        FeatureCache,
        extract,
        fast_frozen,
        head_features,
        split_model,
    )
    from resnet_gui.core.userfiles import UserFileError

    loaded = model if isinstance(model, LoadedModel) else load_model(str(model))
    split = split if split is not None else recorded_split(loaded)
    if not split.root.is_dir():
        raise ReviewDatasetMovedError(
            f"The dataset folder '{printable_path(split.root)}' has moved or been deleted since the training."
        )
    columns = _class_columns(loaded.categories, split.classes)
    samples = [s for s in (*split.train, *split.val) if s.path.is_file()]
    if not samples:
        return
    network = loaded.model
    head_name = loaded.layout.head
    try:
        fc = network.get_submodule(head_name)
    except AttributeError:
        fc = None
    # A Linear, or a 1x1 convolution (timm's v2): either way a (classes, features) matrix.
    if fc is None or head_features(fc) is None:
        raise ReviewError(
            f"{printable(loaded.name)} has no linear classifier ('{head_name}') to review with."
        )
    frozen = split_model(network, "head", loaded.layout).frozen
    torch_device = select_device(device)
    key = family = None
    digests: list[str] = []
    rows: dict[str, torch.Tensor] = {}
    stored = None
    if feature_cache is not None:
        try:
            digests = [file_digest(s.path) for s in samples]
        except UserFileError as err:
            raise ReviewError(f"Cannot read '{printable_path(err.path)}': {err.reason}.") from None
        from resnet_gui.core.training.features import state_fingerprint

        settings = {
            "purpose": "review",
            "backbone": state_fingerprint(frozen),
            "preprocessing": loaded.preprocessing.to_dict(),
            "device": torch_device.type,
        }
        family = FeatureCache.key(**settings)
        key = FeatureCache.key(**settings, files=digests)
        stored = feature_cache.get(key)
        if stored is None:
            # Photo by photo: an earlier review's rows, then the training's own centre views.
            rows = {d: t[:1] for d, t in feature_cache.known_rows(family, digests).items()}
            for training_family in _training_families(loaded, torch_device):
                missing = [d for d in digests if d not in rows]
                if not missing:
                    break
                rows.update({d: t[:1] for d, t in feature_cache.known_rows(training_family, missing).items()})
    if stored is None:
        todo = [s for index, s in enumerate(samples) if not digests or digests[index] not in rows]
        extracted = None
        if todo:
            fast = fast_frozen(frozen)
            if fast is frozen:  # not fused: a copy all the same, never the caller's model moved
                fast = copy.deepcopy(frozen)
            fast = fast.eval().to(torch_device)
            extracted = yield from forward_progress(
                extract(
                    fast,
                    todo,
                    loaded.preprocessing,
                    device=torch_device,
                    batch_size=batch_size,
                    workers=workers,
                    cancel=cancel,
                    phase="features (review)",
                )
            )
            if extracted is None or (cancel is not None and cancel()):
                return
        if rows:
            new_rows = iter(extracted if extracted is not None else ())
            stored = torch.stack([rows[d].float() if d in rows else next(new_rows) for d in digests])
        else:
            stored = extracted
        assert stored is not None
        if feature_cache is not None and key is not None and family is not None:
            feature_cache.put(key, stored, family=family, files=digests)
    features = stored[:, 0].float()
    labels = np.array([s.label for s in samples], dtype=np.int64)
    is_val = np.array([s.split == "val" for s in samples])
    probs = np.zeros((len(samples), len(split.classes)), dtype=np.float64)
    head_weight, bias = fc.weight, fc.bias
    assert isinstance(head_weight, torch.Tensor) and (bias is None or isinstance(bias, torch.Tensor))
    weight = head_weight.detach().float().cpu().flatten(1)
    with torch.no_grad():  # the caller's classifier, wherever it lives, is left as it is
        logits = features[torch.from_numpy(is_val)] @ weight.T if is_val.any() else None
        if logits is not None and bias is not None:
            logits = logits + bias.detach().float().cpu()
    if logits is not None:
        temperature = metadata_temperature(loaded.metadata)
        scaled = torch.softmax(logits[:, columns].double() / temperature, dim=1).numpy()
        probs[is_val] = scaled
    train_rows = ~is_val
    cv = cross_validated_probabilities(
        features[train_rows].numpy(),
        labels[train_rows],
        folds=folds,
        seed=seed,
        num_classes=len(split.classes),
    )
    keep = is_val.copy()
    if cv is not None:
        probs[train_rows] = cv
        keep |= train_rows
    if not keep.any():
        yield []
        return
    chosen = np.flatnonzero(keep)
    yield issues_from_probabilities(
        [samples[i].path for i in chosen],
        labels[chosen].tolist(),
        probs[chosen],
        split.classes,
        ["val" if is_val[i] else "train" for i in chosen],
    )


def _training_families(loaded: LoadedModel, device: torch.device) -> list[str]:
    """The feature-cache families under which a head-mode training of this bundle kept the centre
    views of its photos (validation: no random views; training: its cached views), so a review
    right after a fine-tune needs no pass of the backbone. Mirrors the settings
    :func:`~resnet_gui.core.training.train.train` keys them by (``tests/test_review.py`` checks
    that a review after a training extracts nothing); empty for other bundles."""
    import dataclasses
    import json

    import torch

    from resnet_gui.core.training.config import TrainConfig
    from resnet_gui.core.training.features import FeatureCache
    from resnet_gui.core.training.train import _autocast_for

    raw = loaded.metadata.get("training")
    try:
        training = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        config = TrainConfig.from_dict(training).resolved()
    except (ValueError, TypeError, ResNetGuiError):
        return []
    base = training.get("base_fingerprint")
    if config.mode != "head" or not isinstance(base, str) or not base:
        return []
    base_settings = {
        "base": base,
        "frozen": "pooled",
        "preprocessing": loaded.preprocessing.to_dict(),
        "device": device.type,
        "autocast": _autocast_for(device, config)[0] is not None,
        "aug": dataclasses.asdict(config.augmentation),
        "seed": config.seed,
        "dtype": str(torch.float32),
    }
    views = {0, int(config.cached_views or 0)} if config.cache_features else {0}
    return [FeatureCache.key(**base_settings, views=count) for count in sorted(views)]


def find_label_issues(
    model: str | Path | LoadedModel, split: Split | None = None, **options: Any
) -> list[LabelIssue]:
    """Possible label errors of a fine-tuned bundle's training data, least trustworthy label first.

    ``split``: the photos to review (default: the bundle's recorded split, in the dataset folder it
    records: :class:`ReviewDatasetMovedError` when that folder is gone). Options as
    :func:`iter_label_issues`. An empty list when cancelled.
    """
    issues: list[LabelIssue] = []
    for item in iter_label_issues(model, split, **options):
        if isinstance(item, list):
            issues = item
    return issues


# --- decisions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What the user decided for one photo: ``move`` (to ``label``), ``leave_out`` or ``keep``."""

    path: Path
    action: str
    label: str = ""
    when: str = ""


def _check_root(root: Path) -> Path:
    if not root.is_dir():
        raise ReviewDatasetMovedError(
            f"The dataset folder '{printable_path(root)}' is gone (moved or deleted since the training); "
            "put it back to review its photos."
        )
    try:
        return root.resolve()
    except (OSError, RuntimeError):
        return root.absolute()


class ReviewDecisions:
    """The user's decisions on a dataset's photos, kept in ``datasets/<key>/review.json``.

    Keyed by the photo's path relative to the dataset folder; read again before every change, so
    two windows on one dataset do not lose each other's decisions.
    """

    def __init__(self, dataset_root: Path, data_dir: Path | None = None) -> None:
        self.root = _check_root(Path(dataset_root).expanduser())
        self.data_dir = data_dir
        self.record_folder = dataset_record_folder(self.root, data_dir)
        self.path = self.record_folder / REVIEW_FILE
        self._decisions = self._load()

    @classmethod
    def for_bundle(cls, metadata: Mapping[str, Any], data_dir: Path | None = None) -> ReviewDecisions:
        """The decisions on the dataset a fine-tuned bundle was trained on."""
        from resnet_gui.core.metadata import trained_dataset_folder

        root = trained_dataset_folder(metadata, not_recorded=ReviewError, moved=ReviewDatasetMovedError)
        return cls(root, data_dir)

    def _relative(self, path: Path) -> str:
        path = Path(path)
        absolute = path if path.is_absolute() else self.root / path
        try:
            resolved = absolute.parent.resolve() / absolute.name
            return resolved.relative_to(self.root).as_posix()
        except (ValueError, OSError):
            raise ReviewError(
                f"'{printable_path(path)}' is not in the dataset folder '{printable_path(self.root)}'."
            ) from None

    def _load(self) -> dict[str, Decision]:
        data = read_record(self.path, REVIEW_FORMAT, "review decisions", ReviewError)
        if data is None:
            return {}
        items = data.get("decisions")
        decisions: dict[str, Decision] = {}
        damaged = not isinstance(items, dict)
        for relative, entry in (items or {}).items() if isinstance(items, dict) else ():
            action = entry.get("action") if isinstance(entry, dict) else None
            label = entry.get("label", "") if isinstance(entry, dict) else None
            if (
                action not in ACTIONS
                or not isinstance(label, str)
                or (action == "move" and not label)
                or not isinstance(relative, str)
                or not relative
                or relative.startswith("/")
                or ".." in relative.split("/")
            ):
                damaged = True
                break
            when = entry.get("when", "")
            decisions[relative] = Decision(
                self.root / relative, action, label, when if isinstance(when, str) else ""
            )
        if damaged:
            raise ReviewError(
                f"The review decisions '{printable_path(self.path)}' are damaged; remove the file to start "
                "afresh (no photo is lost: nothing was moved by a decision that was not applied)."
            )
        return decisions

    def _save(self, decisions: dict[str, Decision]) -> None:
        data = {
            "format": REVIEW_FORMAT,
            "dataset": str(self.root),
            "decisions": {
                relative: {"action": d.action, "label": d.label, "when": d.when}
                for relative, d in sorted(decisions.items())
            },
        }
        write_record(self.path, data, "the review decisions", ReviewError)
        self._decisions = decisions

    # -- reading --

    def decisions(self) -> list[Decision]:
        """Every decision, by path."""
        return [self._decisions[key] for key in sorted(self._decisions)]

    def get(self, path: Path) -> Decision | None:
        return self._decisions.get(self._relative(path))

    def pending(self) -> list[Decision]:
        """The decisions that change the folder when applied (move, leave out), by path."""
        return [d for d in self.decisions() if d.action != "keep"]

    def kept(self) -> set[Path]:
        """The photos the user chose to keep as they are (a review can hide them)."""
        return {d.path for d in self._decisions.values() if d.action == "keep"}

    def __len__(self) -> int:
        return len(self._decisions)

    # -- changing --

    def decide(self, path: Path, action: str, label: str = "") -> Decision:
        """Record ``action`` for ``path`` (``move`` needs the class ``label``); replaces an earlier one."""
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, not {action!r}")
        if action == "move" and not label.strip():
            raise ReviewError("Choose the class to move the photo to.")
        relative = self._relative(path)
        decisions = self._load()
        decision = Decision(self.root / relative, action, label if action == "move" else "", _now())
        decisions[relative] = decision
        self._save(decisions)
        return decision

    def move(self, path: Path, label: str) -> Decision:
        return self.decide(path, "move", label)

    def leave_out(self, path: Path) -> Decision:
        return self.decide(path, "leave_out")

    def keep(self, path: Path) -> Decision:
        return self.decide(path, "keep")

    def forget(self, path: Path) -> None:
        """Drop the decision on ``path`` (none: nothing to do)."""
        decisions = self._load()
        if decisions.pop(self._relative(path), None) is not None:
            self._save(decisions)

    def clear(self) -> None:
        self._load()
        self._save({})


# --- plan, apply, undo ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewMove:
    """One move of the plan: ``source`` → ``destination``, both inside the dataset folder."""

    source: Path
    destination: Path
    action: str
    """``move`` (to the class ``label``) or ``leave_out`` (into ``_left_out/<given>/``)."""
    label: str
    given: str
    """The class the photo is in now."""

    def to_dict(self, state: str) -> dict[str, str]:
        return {
            "source": str(self.source),
            "destination": str(self.destination),
            "action": self.action,
            "label": self.label,
            "given": self.given,
            "state": state,
        }


@dataclass(frozen=True)
class ReviewPlan:
    """What :func:`apply_review` would do; ``skipped``: decisions it cannot carry out, and why."""

    root: Path
    record_folder: Path
    moves: tuple[ReviewMove, ...]
    skipped: tuple[tuple[Path, str], ...] = ()

    def lines(self) -> list[str]:
        """One line per move (names escaped), then the skipped decisions, for showing the plan."""
        shown = []
        for move in self.moves:
            what = "leave out" if move.action == "leave_out" else f"move to {printable(move.label)}"
            shown.append(
                f"{what}: {printable_path(self._rel(move.source))} -> "
                f"{printable_path(self._rel(move.destination))}"
            )
        shown += [f"skipped: {printable_path(self._rel(path))} ({reason})" for path, reason in self.skipped]
        return shown

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


@dataclass(frozen=True)
class AppliedReview:
    """The moves an :func:`apply_review` made (their final destinations), kept in the journal."""

    root: Path
    record_folder: Path
    id: str
    when: str
    moves: tuple[ReviewMove, ...]
    skipped: tuple[tuple[Path, str], ...] = ()
    undone: bool = False


def _class_of(root: Path, path: Path, has_splits: bool) -> tuple[Path, str] | None:
    """``(the base folder holding the photo's class folder, the class name)``; None outside a class."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return None
    depth = 2 if has_splits else 1
    if len(parts) < depth + 1 or parts[0].lower() == LEFT_OUT_FOLDER:
        return None
    return (root / parts[0] if has_splits else root), parts[depth - 1]


def _suffixed(path: Path, number: int) -> Path:
    from resnet_gui.core.batch.sort import _suffixed as sort_suffixed

    return sort_suffixed(path, number)


def _free_name(wanted: Path, taken: set[Path]) -> Path:
    for number in range(1_000_000):
        candidate = _suffixed(wanted, number)
        if candidate not in taken and not (candidate.exists() or candidate.is_symlink()):
            taken.add(candidate)
            return candidate
    raise ReviewError(f"Every name like '{printable_path(wanted)}' is taken.")  # pragma: no cover


def plan_review(decisions: ReviewDecisions) -> ReviewPlan:
    """Where each pending decision moves its photo. Only reads the disk.

    *Move to class* goes to that class's folder (the photo's own split folder for a train/val
    dataset), *Leave out* to ``_left_out/<class>/`` at the root; a photo gone since, outside a
    class folder or already in the class it is to move to is listed in ``skipped``.
    """
    root = _check_root(decisions.root)
    has_splits = train_folder(root, ReviewError) is not None
    taken: set[Path] = set()
    moves: list[ReviewMove] = []
    skipped: list[tuple[Path, str]] = []
    for decision in decisions.pending():
        source = decision.path
        if not source.is_file():
            skipped.append((source, "gone since the decision"))
            continue
        found = _class_of(root, source, has_splits)
        if found is None:
            skipped.append((source, "not in a class folder"))
            continue
        base, given = found
        if decision.action == "move":
            folder = class_folder_in(base, decision.label, has_splits, ReviewError)
            if folder.name == given:
                skipped.append((source, f"already in {printable(decision.label)}"))
                continue
        else:
            folder = root / LEFT_OUT_FOLDER / sanitised_class_folder(given)
        destination = _free_name(folder / source.name, taken)
        moves.append(ReviewMove(source, destination, decision.action, decision.label, given))
    return ReviewPlan(root, decisions.record_folder, tuple(moves), tuple(skipped))


# The journal: every apply, with each move's state ("planned", "moving", "moved", "undone").


def _journal_path(record_folder: Path) -> Path:
    return record_folder / JOURNAL_FILE


def _read_journal(record_folder: Path) -> list[dict[str, Any]]:
    data = read_record(_journal_path(record_folder), JOURNAL_FORMAT, "review journal", ReviewError)
    if data is None:
        return []
    applied = data.get("applied")
    if not isinstance(applied, list) or not all(
        isinstance(a, dict) and isinstance(a.get("moves"), list) and isinstance(a.get("id"), str)
        for a in applied
    ):
        raise ReviewError(
            f"The review journal '{printable_path(_journal_path(record_folder))}' is damaged; the moves it "
            "recorded cannot be undone from it (the photos themselves are all still in the dataset folder)."
        )
    return applied


def _write_journal(record_folder: Path, root: Path, applied: list[dict[str, Any]]) -> None:
    data = {"format": JOURNAL_FORMAT, "dataset": str(root), "applied": applied}
    write_record(_journal_path(record_folder), data, "the review journal", ReviewError)


def _move(source: Path, destination: Path) -> None:
    """Sort into Folders' exclusive move: never replaces a file (``FileExistsError`` instead)."""
    from resnet_gui.core.batch.sort import _move_exclusive

    destination.parent.mkdir(parents=True, exist_ok=True)
    _move_exclusive(source, destination)


def apply_review(plan: ReviewPlan, decisions: ReviewDecisions | None = None) -> AppliedReview:
    """Carry out a plan: the journal is written before each move, so a crash midway is undoable.

    The decisions carried out are forgotten (``decisions``, or the dataset's own). A source gone
    since the plan is skipped; a destination taken since gets the next free name. A folder that
    refuses a move stops the apply with :class:`ReviewFolderError`, whose ``applied`` holds the
    moves made before it (undo them with :func:`undo_review`).
    """
    root = _check_root(plan.root)
    if not plan.moves:  # nothing to move: no journal entry to undo
        return AppliedReview(root, plan.record_folder, "", _now(), (), plan.skipped)
    journal = _read_journal(plan.record_folder)
    entry: dict[str, Any] = {
        "id": uuid.uuid4().hex[:12],
        "when": _now(),
        "undone": False,
        "moves": [move.to_dict("planned") for move in plan.moves],
    }
    journal.append(entry)
    _write_journal(plan.record_folder, root, journal)
    done: list[ReviewMove] = []
    skipped = list(plan.skipped)
    failure: str | None = None
    for index, move in enumerate(plan.moves):
        if not move.source.is_file():
            skipped.append((move.source, "gone since the plan"))
            entry["moves"][index]["state"] = "skipped"
            continue
        destination = move.destination
        for number in range(1_000_000):
            candidate = _suffixed(move.destination, number)
            if not (candidate.exists() or candidate.is_symlink()):
                destination = candidate
                break
        actual = replace(move, destination=destination)
        entry["moves"][index] = actual.to_dict("moving")
        _write_journal(plan.record_folder, root, journal)
        try:
            _move(move.source, destination)
        except FileExistsError:
            entry["moves"][index]["state"] = "planned"  # taken in the instant between: not moved
            failure = (
                f"Cannot move '{printable_path(move.source)}': '{printable_path(destination)}' was taken "
                "meanwhile"
            )
        except OSError as err:
            entry["moves"][index]["state"] = "planned"
            failure = (
                f"Cannot move '{printable_path(move.source)}' into '{printable_path(destination.parent)}': "
                f"{output_reason(err)}"
            )
        if failure is not None:
            _write_journal(plan.record_folder, root, journal)
            break
        entry["moves"][index]["state"] = "moved"
        done.append(actual)
    _write_journal(plan.record_folder, root, journal)
    applied = AppliedReview(root, plan.record_folder, entry["id"], entry["when"], tuple(done), tuple(skipped))
    decisions = decisions if decisions is not None else _decisions_or_none(root, plan.record_folder)
    if decisions is not None:
        moved = {decisions._relative(move.source) for move in done}
        kept = {key: value for key, value in decisions._load().items() if key not in moved}
        decisions._save(kept)
    if failure is not None:
        before = f"; the {len(done)} moves before it are done and can be undone" if done else ""
        raise ReviewFolderError(f"{failure}{before}.", applied)
    return applied


def _decisions_or_none(root: Path, record_folder: Path) -> ReviewDecisions | None:
    data_dir = record_folder.parent.parent
    with contextlib.suppress(ReviewError):
        return ReviewDecisions(root, data_dir)
    return None


def _applied_from(root: Path, record_folder: Path, entry: dict[str, Any]) -> AppliedReview:
    moves = []
    for item in entry["moves"]:
        if not isinstance(item, dict):
            continue
        try:
            move = ReviewMove(
                Path(item["source"]),
                Path(item["destination"]),
                str(item["action"]),
                str(item["label"]),
                str(item["given"]),
            )
        except (KeyError, TypeError):
            continue
        state = item.get("state")
        # A crash between the journal and the move: the disk says whether it happened.
        if state == "moved" or (state == "moving" and move.destination.exists() and not move.source.exists()):
            moves.append(move)
        elif state == "moving" and move.destination.exists() and _same_file(move.source, move.destination):
            moves.append(move)  # the crash fell between the link and the unlink
    return AppliedReview(
        root,
        record_folder,
        entry["id"],
        str(entry.get("when", "")),
        tuple(moves),
        undone=entry.get("undone") is True,
    )


def last_applied_review(dataset_root: Path, data_dir: Path | None = None) -> AppliedReview | None:
    """The latest apply of a dataset's review not undone yet (after a restart, or a crash midway)."""
    root = _check_root(Path(dataset_root).expanduser())
    record_folder = dataset_record_folder(root, data_dir)
    for entry in reversed(_read_journal(record_folder)):
        if entry.get("undone") is not True:
            applied = _applied_from(root, record_folder, entry)
            if applied.moves:
                return applied
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def undo_review(applied: AppliedReview, *, skip_missing: bool = False) -> AppliedReview:
    """Move every photo of ``applied`` back where it was; nothing is ever deleted.

    Refused (nothing moved) with :class:`ReviewError` when a photo's old place has been taken
    since, and with :class:`ReviewFileGoneError` when a moved photo is gone since (unless
    ``skip_missing``: the others are then moved back). The decisions are restored, so the
    review shows them again. Returns ``applied`` marked undone.
    """
    root = _check_root(applied.root)
    back: list[ReviewMove] = []
    for move in applied.moves:
        here = move.destination.exists() or move.destination.is_symlink()
        if not here:
            if skip_missing:
                continue
            raise ReviewFileGoneError(
                f"'{printable_path(move.destination)}' was moved or deleted since the review put it there, "
                "so nothing was moved back; put it back, or undo the others without it."
            )
        if (move.source.exists() or move.source.is_symlink()) and not _same_file(
            move.source, move.destination
        ):
            raise ReviewError(
                f"'{printable_path(move.source)}' has been taken by another file since, so nothing was moved "
                "back; move that file away first."
            )
        back.append(move)
    undone: list[ReviewMove] = []
    for move in reversed(back):
        try:
            if _same_file(move.source, move.destination):
                os.unlink(move.destination)  # a crash between link and unlink: the photo is at source
            else:
                _move(move.destination, move.source)
        except OSError as err:
            raise ReviewFolderError(
                f"Cannot move '{printable_path(move.destination)}' back to "
                f"'{printable_path(move.source.parent)}': {output_reason(err)}; {len(undone)} photos were "
                "moved back."
            ) from None
        undone.append(move)
        _remove_empty(move.destination.parent, root)
    journal = _read_journal(applied.record_folder)
    for entry in journal:
        if entry.get("id") == applied.id:
            entry["undone"] = True
            for item in entry["moves"]:
                if isinstance(item, dict) and item.get("state") in ("moved", "moving"):
                    item["state"] = "undone"
    _write_journal(applied.record_folder, root, journal)
    decisions = _decisions_or_none(root, applied.record_folder)
    if decisions is not None:
        restored = decisions._load()
        for move in undone:
            relative = decisions._relative(move.source)
            action = "move" if move.action == "move" else "leave_out"
            restored[relative] = Decision(move.source, action, move.label if action == "move" else "", _now())
        decisions._save(restored)
    return replace(applied, undone=True)


def _remove_empty(folder: Path, root: Path) -> None:
    """Remove ``folder`` and its parents up to ``_left_out`` while they are empty (only those)."""
    left_out = root / LEFT_OUT_FOLDER
    current = folder
    while current == left_out or left_out in current.parents:
        try:
            current.rmdir()
        except OSError:
            return
        if current == left_out:
            return
        current = current.parent
