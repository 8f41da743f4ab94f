"""The one rule for "not sure", and the words for it and for "unlike the training photos".

Every place that marks a prediction *not sure* asks :func:`is_not_sure`: ``resnet-gui classify``,
the rows of ``resnet-gui batch`` (their ``not_sure`` column), ``--sort-into``'s ``_unsure/``
folder, the batch summary and the app's batch table. The threshold is the user's choice
(``--min-confidence``), else the model's own (a fine-tune stores one in its bundle:
:func:`resnet_gui.core.metadata.metadata_unsure_threshold`), else none: nothing is marked.

"Unlike the training photos" is the model's to say (:meth:`ImageClassifier.unusual
<resnet_gui.core.engine.ImageClassifier.unusual>`): ``None`` for a model without an
out-of-distribution threshold (an ImageNet model), which is not the same as ``False``.

No torch, no numpy: the CLI's parser and the writers use it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "NOT_SURE_TEXT",
    "UNLIKE_TRAINING_TEXT",
    "is_not_sure",
    "model_unsure_threshold",
    "unsure_threshold_for",
]

#: How a not-sure prediction is marked for people (the CLI's table, the app's batch table).
NOT_SURE_TEXT = "not sure"
#: How a photo unlike the training photos is marked for people.
UNLIKE_TRAINING_TEXT = "looks unlike the photos the model was trained on"


def is_not_sure(probability: float | None, threshold: float | None) -> bool:
    """Whether a top-1 ``probability`` is *not sure*: below ``threshold``. No threshold (None), or
    no prediction (a file that failed), is never not sure."""
    return probability is not None and threshold is not None and probability < threshold


def model_unsure_threshold(classifier: Any) -> float | None:
    """The "not sure" threshold a classifier's model brings (a fine-tuned bundle's), if any."""
    value = getattr(classifier, "unsure_threshold", None)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def unsure_threshold_for(classifier: Any, chosen: float | None) -> float | None:
    """The threshold a run uses: the user's ``chosen`` one (``--min-confidence``), else the model's."""
    if chosen is not None:
        if not 0.0 <= chosen <= 1.0:
            raise ValueError(f"a not-sure threshold is between 0 and 1, not {chosen!r}")
        return float(chosen)
    return model_unsure_threshold(classifier)
