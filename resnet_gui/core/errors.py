"""Typed errors of the engine.

Every error a user can cause or meet (a bad file, missing weights, no network) is a
:class:`ResNetGuiError` whose ``str()`` is a complete sentence meant for that user. The
CLI prints it and exits with a non-zero code; the GUI shows it in a message box. Anything
else that escapes is a bug.
"""

from __future__ import annotations

from pathlib import Path


class ResNetGuiError(Exception):
    """Base of every error whose message is written for the user."""

    exit_code = 1


class ImageLoadError(ResNetGuiError):
    """An image file could not be read or decoded."""

    exit_code = 3

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot read image '{path}': {reason}")


class ImageTooLargeError(ImageLoadError):
    """An image over the decompression-bomb limit: refused unless the user raises the limit.

    Its own type so the CLI and the GUI can say how to raise it (``--max-megapixels``, a button).
    """


class UnknownModelError(ResNetGuiError):
    """A model or weights name that is not in the registry."""

    exit_code = 2


class WeightsError(ResNetGuiError):
    """Weights could not be obtained, read or applied to a model."""

    exit_code = 4


class WeightsNotAvailableError(WeightsError):
    """The weights are neither cached nor reachable (offline, or never imported)."""


class DownloadError(WeightsError):
    """A download failed (network error, interrupted transfer)."""


class DownloadCancelled(DownloadError):
    """The user cancelled a download; nothing was written to the cache."""


class HashMismatchError(DownloadError):
    """A downloaded file does not have the checksum it was published with."""


class UnsafeCheckpointError(WeightsError):
    """A checkpoint needs arbitrary code execution (pickle) to load, so it is refused."""


class WeightsShapeMismatchError(WeightsError):
    """The weights in a file do not fit the chosen architecture."""


class KerasImportError(WeightsError):
    """A Keras/TF.js model could not be converted."""
