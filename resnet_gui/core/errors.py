"""Typed errors of the engine.

Every error a user can cause or meet (a bad file, missing weights, no network) is a
:class:`ResNetGuiError` whose ``str()`` is a complete sentence meant for that user. The
CLI prints it and exits with a non-zero code; the GUI shows it in a message box. Anything
else that escapes is a bug.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal, get_args

#: Why an image could not be classified, for a caller to act on (never the message text):
#: ``"unreadable"`` (missing, not an image, corrupt, no memory to decode it), ``"too_large"`` (over
#: the decompression-bomb limit: the user may raise it), ``"model_failed"`` (it decoded, but the
#: model failed on its batch).
ImageFailureKind = Literal["unreadable", "too_large", "model_failed"]
IMAGE_FAILURE_KINDS: tuple[ImageFailureKind, ...] = get_args(ImageFailureKind)


class ResNetGuiError(Exception):
    """Base of every error whose message is written for the user."""

    exit_code = 1


class ImageLoadError(ResNetGuiError):
    """An image file could not be read or decoded.

    ``failure_kind`` is what a batch row or an :class:`~resnet_gui.core.engine.ImageFailure`
    made from this error carries, so callers test the kind, not the words.
    """

    exit_code = 3
    failure_kind: ClassVar[ImageFailureKind] = "unreadable"

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot read image '{path}': {reason}")


class ImageTooLargeError(ImageLoadError):
    """An image over the decompression-bomb limit: refused unless the user raises the limit.

    Its own type so the CLI and the GUI can say how to raise it (``--max-megapixels``, a button).
    """

    failure_kind: ClassVar[ImageFailureKind] = "too_large"


class Cancelled(ResNetGuiError):
    """Work the user stopped: the one type for every way of cancelling (a download, a health check,
    an explanation, a GUI job), so callers test one thing. Training's Stop is not an error: it ends
    the run and keeps the best model."""

    exit_code = 130

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)


#: How long work is told to stop: an event a caller sets, or a function that says whether to stop.
CancelCheck = threading.Event | Callable[[], bool]


def as_cancel_check(cancel: CancelCheck | None) -> Callable[[], bool]:
    """The one form a loop polls: a function that says whether to stop (never, for None)."""
    if cancel is None:
        return lambda: False
    if isinstance(cancel, threading.Event):
        return cancel.is_set
    return cancel


class UnknownModelError(ResNetGuiError):
    """A model or weights name that is not in the registry."""

    exit_code = 2


class WeightsError(ResNetGuiError):
    """Weights could not be obtained, read or applied to a model."""

    exit_code = 4


class WeightsNotAvailableError(WeightsError):
    """The weights are neither cached nor reachable (offline, or never imported).

    ``filename`` and ``folder`` name what is missing and where it was looked for, so the app can
    word its own message (buttons instead of the command lines the sentence gives).
    """

    def __init__(self, message: str, *, filename: str = "", folder: Path | None = None) -> None:
        super().__init__(message)
        self.filename = filename
        self.folder = folder


class DownloadError(WeightsError):
    """A download failed (network error, interrupted transfer)."""


class DownloadCancelled(DownloadError, Cancelled):
    """The user cancelled a download; nothing was written to the cache."""

    exit_code = 130


class HashMismatchError(DownloadError):
    """A downloaded file does not have the checksum it was published with."""


class UnsafeCheckpointError(WeightsError):
    """A checkpoint needs arbitrary code execution (pickle) to load, so it is refused."""


class WeightsShapeMismatchError(WeightsError):
    """The weights in a file do not fit the chosen architecture."""


class KerasImportError(WeightsError):
    """A Keras/TF.js model could not be converted."""


class ModelMetadataError(WeightsError):
    """A model file's metadata (preprocessing, class names) is malformed or out of range.

    Refused where the file is read, naming the field, so no later step sees a crop of -5 or a
    resize of 100000 pixels. ``problem`` is the clause about the field ("its preprocessing 'std' is
    [0, 0, 0]; ..."); :meth:`about` names the file in the sentence.
    """

    def __init__(self, problem: str, source: str = "") -> None:
        self.problem = problem
        self.source = source
        what = f"The model file '{source}'" if source else "The model file"
        super().__init__(f"{what} cannot be used: {problem}. It is damaged or was not made by this app.")

    def about(self, source: str | Path) -> ModelMetadataError:
        """The same error, naming the file it came from."""
        return ModelMetadataError(self.problem, str(source))


class NonFiniteWeightsError(WeightsError):
    """A model's weights hold NaN or infinite values: every prediction would be meaningless."""


class OutputError(ResNetGuiError):
    """A result file cannot be written where the user asked (permissions, full disk, a folder)."""

    exit_code = 5


class OutputExistsError(OutputError):
    """The output path holds something that is not ours to replace (an input, a model, a user's file)."""


class OutputBusyError(OutputError):
    """Another run is writing the same output right now."""


class TrainingDivergedError(ResNetGuiError):
    """A fine-tuning run whose loss or weights became NaN or infinite: nothing it made is kept.

    Its own type so a front end can offer the fix the message names (a lower learning rate).
    """
