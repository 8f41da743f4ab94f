"""The one image loader: every photo the CLI, the GUI and a batch read goes through here.

Keeping a single loader means an image is decoded, rotated and converted to RGB the same
way wherever it is classified, so a photo gets the same prediction in the GUI and the CLI.
It returns a fully loaded, upright RGB :class:`PIL.Image.Image` with no open file behind
it, or raises :class:`~resnet_gui.core.errors.ImageLoadError` with a short reason written
for the user: no raw Pillow or OS error escapes.

What it takes care of:

* EXIF orientation is applied, so a phone photo comes out the way it was taken.
* Every mode becomes RGB. Transparency is composited on white (a transparent background
  is shown white by viewers, and black would change the prediction). High-bit-depth
  greyscale is scaled to 0-255 rather than clipped, see :func:`_numeric_to_l`.
* Animated GIF/WebP (and multi-page TIFF): the first frame.
* ``min_size`` lets JPEG decode straight at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling),
  several times faster than decoding 12 MP and resizing.
* Pillow's decompression-bomb limit stays on and is adjustable with
  :func:`set_max_image_pixels`; an image over the limit is refused (not just warned about).

This module must not import Qt or torch: the CLI and worker processes use it too.
"""

from __future__ import annotations

import io
import os
import re
import threading
import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import ExifTags, Image, ImageOps

from resnet_gui.core.errors import ImageLoadError, ImageTooLargeError
from resnet_gui.core.userfiles import (  # noqa: F401 - re-exported for callers
    REASON_DIRECTORY,
    REASON_NO_FILE,
    REASON_NOT_REGULAR,
    REASON_PERMISSION,
    UserFileError,
    open_user_file,
    os_reason,
)

__all__ = [
    "DEFAULT_MAX_IMAGE_PIXELS",
    "IMAGE_EXTENSIONS",
    "get_max_image_pixels",
    "load_image",
    "load_image_from_bytes",
    "set_max_image_pixels",
]

# Key of ``Image.info`` where load_image records the photo's upright size before draft decoding.
ORIGINAL_SIZE_KEY = "resnet_gui.original_size"

#: File name suffixes (lower-case, with the dot) of the formats the loader is meant for,
#: for scanning folders and for file dialogs. Content is sniffed, not the suffix: a PNG
#: named ``.jpg`` still loads.
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
)


def is_image_name(name: str) -> bool:
    """A photo's file name by the dataset scan's rule: an image suffix, not hidden."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def images_under(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, hidden entries skipped, symlinked folders not followed)."""
    found: list[Path] = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(current) / name for name in files if is_image_name(name))
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


# The short reasons ImageLoadError carries, for callers that tell the cases apart (those about the
# file itself are core.userfiles', shared by every reader of a user's file).
REASON_EMPTY = "file is empty"
REASON_NOT_IMAGE = "not an image file or unsupported format"
REASON_CORRUPT = "file is truncated or corrupt"
REASON_MEMORY = "not enough memory to decode the image"
REASON_NO_DATA = "no image data"

_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_UINT16_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_NUMERIC_MODES = _UINT16_MODES | {"I", "F"}

# Pillow's bomb check warns (instead of raising) between 1x and 2x the limit; while
# Image.open runs we turn that warning into an error. warnings.catch_warnings swaps the
# process-wide filter list, so two threads entering and leaving it out of order could leave
# the filter installed for good; the lock keeps our own uses strictly nested. Only the
# header parse runs under it, so decoding in parallel threads is not serialised.
_OPEN_LOCK = threading.Lock()
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


DEFAULT_MAX_IMAGE_PIXELS: int | None = Image.MAX_IMAGE_PIXELS
"""Pillow's own limit (about 89 MP), the one in force unless the user raises it."""


def set_max_image_pixels(limit: int | None) -> None:
    """Set the decompression-bomb limit (width x height) for every image opened after this.

    This is Pillow's own process-wide ``Image.MAX_IMAGE_PIXELS``, so Pillow's internal
    checks and ours agree. ``None`` disables the check: only for trusted input.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"max image pixels must be a positive int or None, not {limit!r}")
    Image.MAX_IMAGE_PIXELS = limit


def get_max_image_pixels() -> int | None:
    """The current decompression-bomb limit in pixels (``None``: no limit)."""
    return Image.MAX_IMAGE_PIXELS


def load_image(path: str | os.PathLike[str], *, min_size: int | None = None) -> Image.Image:
    """Read an image file as an upright RGB image, fully decoded, with the file closed.

    ``min_size`` is a hint for the shorter side the caller will resize to: a JPEG may then
    be decoded at a reduced scale whose shorter side is still at least ``min_size`` (never
    smaller). Other formats are returned at full size. The caller still does its own resize.

    Raises :class:`ImageLoadError` for anything wrong with the file (``ValueError`` for a
    bad ``min_size``, which is a programming error).
    """
    _check_min_size(min_size)
    path = Path(path)
    try:
        # The one check for a user's file: a FIFO or a device would block or never end.
        with open_user_file(path) as fp:
            if os.fstat(fp.fileno()).st_size == 0:
                raise ImageLoadError(path, REASON_EMPTY)
            return _decode(fp, path, min_size)  # raises only ImageLoadError
    except UserFileError as exc:
        raise ImageLoadError(path, exc.reason) from None
    except OSError as exc:  # closing the file
        raise ImageLoadError(path, os_reason(exc)) from None


def load_image_from_bytes(
    data: bytes | bytearray | memoryview, *, name: str = "<clipboard>", min_size: int | None = None
) -> Image.Image:
    """Decode an image held in memory (a paste, a drag from a browser) exactly as :func:`load_image`.

    ``name`` only labels the data in error messages.
    """
    _check_min_size(min_size)
    if len(data) == 0:
        raise ImageLoadError(name, REASON_NO_DATA)
    return _decode(io.BytesIO(bytes(data)), name, min_size)


def _check_min_size(min_size: int | None) -> None:
    if min_size is not None and (isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 1):
        raise ValueError(f"min_size must be a positive int or None, not {min_size!r}")


def _bomb_reason(exc: BaseException) -> str:
    match = _BOMB_PIXELS.search(str(exc))
    pixels = f"{int(match.group(1)):,} pixels, " if match else ""
    return f"image is too large ({pixels}limit {get_max_image_pixels():,}): possible decompression bomb"


def _decode(fp: IO[bytes], name: str | Path, min_size: int | None) -> Image.Image:
    """Open, check size, draft, load, rotate and convert: the path shared by files and bytes."""
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(name, _bomb_reason(exc)) from None
    except Image.UnidentifiedImageError:
        raise ImageLoadError(name, REASON_NOT_IMAGE) from None
    except MemoryError:
        raise ImageLoadError(name, REASON_MEMORY) from None
    except OSError as exc:
        if exc.errno is not None:  # a real I/O error, not a decoder complaint
            raise ImageLoadError(name, os_reason(exc)) from None
        raise ImageLoadError(name, REASON_CORRUPT) from None
    except Exception:  # plugins raise SyntaxError, ValueError, struct.error, ... on bad headers
        raise ImageLoadError(name, REASON_CORRUPT) from None

    keep_opened = False
    try:
        limit = get_max_image_pixels()
        pixels = opened.size[0] * opened.size[1]
        if limit is not None and pixels > limit:
            # Pillow already refused or warned in open(); this also covers a limit lowered
            # by another thread meanwhile, and states the rule in one place.
            raise ImageTooLargeError(
                name,
                f"image is too large ({pixels:,} pixels, limit {limit:,}): possible decompression bomb",
            )
        stored_size = opened.size
        if min_size is not None:
            # Must precede load() and the EXIF rotation; a no-op for formats other than JPEG.
            # The short side stays >= min_size: libjpeg scales by 1/2, 1/4, 1/8 only as far
            # as both sides stay >= the requested size, whatever the orientation.
            opened.draft("RGB", (min_size, min_size))
        opened.load()
        decoded_size = opened.size
        rgb = _to_rgb(_upright(opened), name)
        # The photo's true upright size, which draft decoding hides: shown to users as the size.
        turned = rgb.size != decoded_size
        rgb.info[ORIGINAL_SIZE_KEY] = stored_size[::-1] if turned else stored_size
        if rgb is opened:
            if _is_detached(opened):
                keep_opened = True
                return rgb
            # The first frame of a multi-frame file, or pixels memory-mapped from the file:
            # copy them so nothing refers to the file we close.
            rgb = opened.copy()
        return rgb
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(name, _bomb_reason(exc)) from None
    except MemoryError:
        raise ImageLoadError(name, REASON_MEMORY) from None
    except OSError as exc:
        if exc.errno is not None:
            raise ImageLoadError(name, os_reason(exc)) from None
        raise ImageLoadError(name, REASON_CORRUPT) from None
    except Exception:  # decoders raise ValueError, SyntaxError, EOFError, ... on bad data
        raise ImageLoadError(name, REASON_CORRUPT) from None
    finally:
        if not keep_opened:
            opened.close()


def original_size(image: Image.Image) -> tuple[int, int]:
    """The upright size of the file an image was loaded from (before draft decoding shrank it)."""
    return tuple(image.info.get(ORIGINAL_SIZE_KEY, image.size))  # type: ignore[return-value]


def _is_detached(image: Image.Image) -> bool:
    """Whether a loaded image owes nothing more to its file, so it can be returned without a copy.

    A plain JPEG or PNG: :meth:`ImageFile.load` drops the file once the single frame is
    decoded. Copying instead would add ~50 ms to a full-size 12 MP photo.
    """
    return (
        image.format in ("JPEG", "PNG")
        and not getattr(image, "is_animated", False)
        and getattr(image, "map", None) is None
        and getattr(image, "fp", None) is None
    )


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a broken EXIF block leaves the image as stored."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # corrupt EXIF must not make a decodable photo unreadable
        return image
    if orientation not in (2, 3, 4, 5, 6, 7, 8):
        return image
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        return image


def _to_rgb(image: Image.Image, name: str | Path) -> Image.Image:
    """Any Pillow mode to RGB: alpha on white, high bit depth scaled rather than clipped."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in _NUMERIC_MODES:
        return _numeric_to_l(image).convert("RGB")
    if mode in _ALPHA_MODES or "transparency" in image.info:
        # P with a transparent index or tRNS, L/RGB with a transparent colour, LA, RGBA, PA.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    # 1, L, P, CMYK (Pillow already undoes Adobe's inverted CMYK in JPEG), YCbCr, HSV.
    try:
        return image.convert("RGB")
    except ValueError:
        raise ImageLoadError(name, f"unsupported colour mode {mode}") from None


def _numeric_to_l(image: Image.Image) -> Image.Image:
    """Greyscale wider than 8 bits (I;16, I, F) to 8-bit L without clipping to white.

    Pillow's own ``convert("L")`` clips these at 255, so a 16-bit gradient becomes white.
    The rule:

    * ``I;16`` (unsigned 16-bit, the bit depth is known): 0..65535 -> 0..255 (divide by 257).
    * ``I`` / ``F`` (the file does not say its real bit depth): the smallest usual range that
      holds the data is assumed: floats within 0..1 are 0..1; values within 0..255 are
      8-bit; within 0..65535, 16-bit. Anything else (negative, larger) is stretched from its
      own minimum to its maximum. NaN becomes the minimum, +/-inf the ends of the range.
    """
    data = np.asarray(image)
    if image.mode in _UINT16_MODES:
        scaled = data.astype(np.float64) / 257.0
    else:
        values = data.astype(np.float64)
        finite = np.isfinite(values)
        if not finite.any():
            return Image.new("L", image.size, 0)
        low, high = float(values[finite].min()), float(values[finite].max())
        values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
        if image.mode == "F" and low >= 0.0 and high <= 1.0:
            scaled = values * 255.0
        elif low >= 0.0 and high <= 255.0:
            scaled = values
        elif low >= 0.0 and high <= 65535.0:
            scaled = values / 257.0
        else:
            # high > low here: a constant image falls in one of the ranges above unless
            # it is negative or > 65535, then it is black.
            span = high - low
            scaled = (values - low) * (255.0 / span) if span > 0 else np.zeros_like(values)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
