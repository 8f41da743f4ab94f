"""Download torchvision weights into torchvision's own cache, with progress and cancel.

torchvision downloads silently (or with a tqdm bar on stderr) and cannot be cancelled, which
is fine for a script but not for a GUI. This module fetches the same URL into the same file
(``$TORCH_HOME/hub/checkpoints/<name>``) with the same SHA-256 check, so a file downloaded
here is found by ``torch.hub.load_state_dict_from_url`` and vice versa; it reports progress
through a plain callback the GUI and the CLI both use, and it never leaves a partial file in
the cache: the bytes go to a temporary file that is renamed only once complete and verified.

The callbacks run in the thread that calls :func:`download_weights` (a GUI calls it from a
worker thread and forwards progress to the UI thread itself).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from resnet_gui.core.atomic import atomic_path
from resnet_gui.core.errors import (
    DownloadCancelled,
    DownloadError,
    HashMismatchError,
    OutputError,
    ResNetGuiError,
    WeightsError,
    WeightsNotAvailableError,
)
from resnet_gui.core.paths import checkpoints_dir

ProgressCallback = Callable[[int, int | None], None]
"""``progress(bytes_done, bytes_total)``; ``bytes_total`` is None when the server does not say.
The last call of a successful download always has ``bytes_done == bytes_total``."""

CancelCheck = Callable[[], bool]
"""Polled between chunks; returning True cancels the download (:class:`DownloadCancelled`)."""

CHUNK_SIZE = 256 * 1024

# The same pattern torch.hub uses to find the hash prefix in a file name ("resnet50-11ad3fa6.pth").
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")

_USER_AGENT = "resnet-gui"
_NETWORK_ERRORS = (OSError, http.client.HTTPException)


def cached_weights_path(url: str) -> Path:
    """Where torch.hub caches ``url``: the checkpoints folder plus the URL's file name.

    Computed exactly like ``torch.hub.load_state_dict_from_url`` so both find the same file.
    """
    name = os.path.basename(urllib.parse.urlparse(url).path)
    if not name:
        raise WeightsError(f"Cannot download weights from '{url}': the address does not name a file.")
    return checkpoints_dir() / name


def expected_hash_prefix(filename: str) -> str | None:
    """The SHA-256 prefix a torchvision file name promises (``resnet50-11ad3fa6.pth`` -> ``11ad3fa6``)."""
    match = HASH_REGEX.search(filename)
    return match.group(1) if match and match.group(1) else None


def download_weights(
    url: str,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    timeout: float = 30.0,
    check_hash: bool = True,
    destination: Path | None = None,
) -> Path:
    """Return the cached file for ``url``, downloading it first if it is not cached yet.

    A cached file is returned without touching the network. Otherwise the file is streamed
    into a temporary file in the cache folder, checked against the SHA-256 prefix in its name
    (when ``check_hash``) and only then renamed into place.

    Raises :class:`WeightsNotAvailableError` when the server cannot be reached (offline),
    :class:`DownloadError` when the transfer fails (HTTP error, interrupted, stalled),
    :class:`HashMismatchError` when the bytes are not the published ones, and
    :class:`DownloadCancelled` when ``cancel()`` returned True. In every failure case nothing
    is left in the cache. ``destination`` (default: torch.hub's cache path for ``url``) is where the
    file is kept, for addresses whose file names are not unique (the Hugging Face hub's
    ``model.safetensors``).
    """
    destination = Path(destination) if destination is not None else cached_weights_path(url)
    if destination.is_file():
        return destination
    if cancel is not None and cancel():
        raise _cancelled(destination)
    expected = expected_hash_prefix(destination.name) if check_hash else None
    try:
        with atomic_path(destination) as tmp:
            digest = _fetch(url, tmp, destination, progress, cancel, timeout)
            if expected is not None and not digest.startswith(expected):
                error = HashMismatchError(
                    f"The downloaded file {destination.name} is not the published one: its SHA-256 starts "
                    f"with '{digest[: len(expected)]}' but '{expected}' was expected (from {url}). "
                    "The file was not kept. Retry the download; if this keeps happening, something "
                    "between you and the server is altering the file."
                )
                error.expected = expected  # type: ignore[attr-defined]
                error.actual = digest  # type: ignore[attr-defined]
                raise error
    except OutputError as err:  # the cache folder, not the network: network errors are converted in _fetch
        cause = err.__cause__ or err.__context__
        why = _describe(cause) if isinstance(cause, OSError) else str(err).rstrip(".")
        raise DownloadError(
            f"Cannot save {destination.name} into {destination.parent}: {why}. "
            "Check that the folder is writable and that the disk is not full."
        ) from err
    except ResNetGuiError:
        raise
    except OSError as err:
        raise DownloadError(
            f"Cannot save {destination.name} into {destination.parent}: {_describe(err)}. "
            "Check that the folder is writable and that the disk is not full."
        ) from err
    return destination


def _fetch(
    url: str,
    tmp: Path,
    destination: Path,
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
    timeout: float,
) -> str:
    """Stream ``url`` into ``tmp``; return the hex SHA-256 of what was received."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        raise DownloadError(
            f"Cannot download {destination.name}: the server answered HTTP {err.code} ({err.reason}) "
            f"for {url}. {_what_to_do(destination)}"
        ) from None
    except urllib.error.URLError as err:  # connection refused, DNS failure, connect timeout: offline
        raise WeightsNotAvailableError(
            f"Cannot download {destination.name}: {urllib.parse.urlparse(url).netloc or url} could not be "
            f"reached ({_describe(err)}). {_what_to_do(destination, offline=True)}"
        ) from None
    except ValueError:
        raise DownloadError(f"Cannot download {destination.name}: '{url}' is not a valid address.") from None
    except _NETWORK_ERRORS as err:  # reached the server, but it dropped or stalled before answering
        raise _interrupted(destination, url, _describe(err)) from None

    sha256 = hashlib.sha256()
    done = 0
    with response, open(tmp, "wb") as out:
        total = _content_length(response)
        if progress is not None:
            progress(0, total)
        while True:
            if cancel is not None and cancel():
                raise _cancelled(destination)
            try:
                chunk = response.read(CHUNK_SIZE)
            except _NETWORK_ERRORS as err:
                raise _interrupted(destination, url, _describe(err)) from None
            if not chunk:
                break
            out.write(chunk)
            sha256.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    if total is not None and done != total:
        raise _interrupted(destination, url, f"received {done:,} of {total:,} bytes")
    if total is None and progress is not None:
        progress(done, done)  # so that the last call always reports completion
    return sha256.hexdigest()


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        length = int(value) if value is not None else None
    except ValueError:
        return None
    return length if length is not None and length >= 0 else None


def _what_to_do(destination: Path, *, offline: bool = False) -> str:
    first = "connect to the internet and retry" if offline else "retry later"
    return (
        f"To get these weights: {first}, copy the file {destination.name} into {destination.parent}, "
        "or use --weights FILE / import Keras weights with `resnet-gui weights import-keras`."
    )


def _interrupted(destination: Path, url: str, reason: str) -> DownloadError:
    return DownloadError(
        f"The download of {destination.name} from {url} was interrupted ({reason}); nothing was kept. "
        f"{_what_to_do(destination)}"
    )


def _cancelled(destination: Path) -> DownloadCancelled:
    return DownloadCancelled(f"The download of {destination.name} was cancelled; nothing was saved.")


def _describe(err: BaseException) -> str:
    """A short human reason for a network or file error, without the exception's repr."""
    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        reason = err.reason
        return _describe(reason) if isinstance(reason, BaseException) else str(reason)
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, http.client.IncompleteRead):
        return f"received {len(err.partial):,} bytes, {err.expected or 'more'} missing"
    if isinstance(err, http.client.RemoteDisconnected):
        return "the server closed the connection"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


class TerminalProgress:
    """A text progress bar for the CLI: redraws one line with ``\\r`` on a terminal, and prints a
    line every 10 % (or every few seconds when the size is unknown) when output is a log file."""

    def __init__(self, stream: TextIO | None = None, label: str = "", width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.width = width
        self._isatty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start: float | None = None
        self._last_draw: float | None = None
        self._last_decile = -1
        self._line_open = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        finished = total is not None and done >= total and (done > 0 or total == 0)
        if self._isatty:
            if finished or self._last_draw is None or now - self._last_draw >= 0.1:
                self.stream.write("\r" + self._render(done, total, now))
                self._line_open = True
                self._last_draw = now
        else:
            decile = (done * 10 // total) if total else None
            if decile is not None:
                draw = decile > self._last_decile
                self._last_decile = max(self._last_decile, decile)
            else:
                draw = finished or self._last_draw is None or now - self._last_draw >= 5.0
            if draw:
                self.stream.write(self._render(done, total, now) + "\n")
                self._last_draw = now
        if finished:
            self.close()
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (call it when a download fails mid-way, before printing the error)."""
        if self._line_open:
            self.stream.write("\n")
            self.stream.flush()
            self._line_open = False

    def _render(self, done: int, total: int | None, now: float) -> str:
        elapsed = max(now - (self._start or now), 1e-6)
        speed = f"{done / 1e6 / elapsed:6.1f} MB/s" if elapsed > 0.05 else "     - MB/s"
        prefix = f"{self.label} " if self.label else ""
        if total:
            fraction = min(done / total, 1.0)
            filled = int(fraction * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            return f"{prefix}[{bar}] {fraction * 100:5.1f}%  {done / 1e6:.1f}/{total / 1e6:.1f} MB  {speed}"
        return f"{prefix}{done / 1e6:.1f} MB  {speed}"


def terminal_progress(stream: TextIO | None = None, label: str = "") -> TerminalProgress:
    """A :data:`ProgressCallback` drawing a text bar on ``stream`` (default: ``sys.stderr`` at call time)."""
    return TerminalProgress(stream, label)
