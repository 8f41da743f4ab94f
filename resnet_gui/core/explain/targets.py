"""Which class to explain: the predicted ones, a class index, or a class name as people type it.

Names are matched in decreasing order of strictness, and the first rule that matches anything
decides: the exact name, then the name ignoring case (and ``_``/extra spaces), then a unique
substring ignoring case. Several matches at one rule are an :class:`AmbiguousTargetError` that
lists the candidates with their indices ("cat" is part of a dozen ImageNet names; "Cardigan",
the corgi, and "cardigan", the sweater, differ only by case), never a silent guess. A string of
digits that is no class name is an index, so command lines can pass either.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

import numpy as np

from resnet_gui.core.errors import ResNetGuiError

TargetSpec = int | str | Sequence[int | str] | None

_MAX_LISTED = 12


class TargetError(ResNetGuiError):
    """A target class that cannot be resolved to exactly one class of the model."""

    exit_code = 2


class UnknownTargetError(TargetError):
    """A class name that matches nothing, or a class index out of range."""


class AmbiguousTargetError(TargetError):
    """A class name that matches several classes; ``candidates`` lists them as (index, name)."""

    def __init__(self, message: str, candidates: Sequence[tuple[int, str]]) -> None:
        super().__init__(message)
        self.candidates = tuple(candidates)


def _fold(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("_", " ")).strip().casefold()


def _listing(matches: Sequence[int], categories: Sequence[str]) -> str:
    shown = ", ".join(f"{categories[i]} ({i})" for i in matches[:_MAX_LISTED])
    more = len(matches) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def resolve_target(target: int | str, categories: Sequence[str]) -> int:
    """The class index ``target`` designates (see the module docstring for the rules)."""
    count = len(categories)
    if isinstance(target, (bool, np.bool_)):
        raise UnknownTargetError(f"{target!r} is not a class: give a class index or a class name.")
    if isinstance(target, (int, np.integer)):
        index = int(target)
        if not 0 <= index < count:
            raise UnknownTargetError(
                f"Class index {index} is out of range: this model has {count} classes (0 to {count - 1})."
            )
        return index
    if not isinstance(target, str):
        raise UnknownTargetError(f"{target!r} is not a class: give a class index or a class name.")
    wanted = target.strip()
    if not wanted:
        raise UnknownTargetError("An empty class name matches no class.")
    folded = _fold(wanted)
    folded_categories = [_fold(name) for name in categories]
    rules = (
        ("is the name of", [i for i, name in enumerate(categories) if name == wanted]),
        ("is the name of", [i for i, name in enumerate(folded_categories) if name == folded]),
        ("is part of the names of", [i for i, name in enumerate(folded_categories) if folded in name]),
    )
    for rule, matches in rules:
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise AmbiguousTargetError(
                f"'{wanted}' {rule} {len(matches)} classes: {_listing(matches, categories)}. "
                "Type more of the name, or give the class index.",
                [(i, categories[i]) for i in matches],
            )
    if wanted.isdigit():
        return resolve_target(int(wanted), categories)
    close = difflib.get_close_matches(folded, folded_categories, n=5, cutoff=0.6)
    suggestion = ""
    if close:
        indices = [folded_categories.index(name) for name in close]
        suggestion = f" Did you mean: {_listing(indices, categories)}?"
    raise UnknownTargetError(f"No class of this model is called '{wanted}'.{suggestion}")


def parse_targets(targets: TargetSpec, categories: Sequence[str]) -> list[int] | None:
    """Explicit targets as class indices in the given order without repeats; None means "predicted"."""
    if targets is None:
        return None
    items = [targets] if isinstance(targets, (str, int, np.integer)) else list(targets)
    if not items:
        raise UnknownTargetError("The list of target classes is empty.")
    indices: list[int] = []
    for item in items:
        index = resolve_target(item, categories)
        if index not in indices:
            indices.append(index)
    return indices


def top_k_indices(probabilities: np.ndarray, k: int) -> list[int]:
    """The ``k`` most probable classes of one row, best first (ties keep the lower index first)."""
    k = max(1, min(int(k), probabilities.shape[-1]))
    return [int(i) for i in np.argsort(-probabilities, kind="stable")[:k]]
