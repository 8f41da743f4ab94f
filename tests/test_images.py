"""The single image loader: every mode to RGB, EXIF, frames, draft decoding, and its errors.

Every input is generated here with Pillow/numpy, and results are checked by pixel value.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resnet_gui.core.errors import ImageLoadError, ImageTooLargeError
from resnet_gui.core.images import (
    IMAGE_EXTENSIONS,
    get_max_image_pixels,
    load_image,
    load_image_from_bytes,
    set_max_image_pixels,
)

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


def assert_close(actual: tuple[int, ...], expected: tuple[int, ...], tol: int = 0) -> None:
    assert len(actual) == len(expected), (actual, expected)
    assert all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True)), (
        f"{actual} != {expected} (±{tol})"
    )


def assert_rgb(image: Image.Image) -> None:
    assert isinstance(image, Image.Image)
    assert image.mode == "RGB"


def quadrants(size: int = 64) -> Image.Image:
    """Red, green / blue, white quadrants: colour placement survives any lossless or lossy format."""
    half = size // 2
    image = Image.new("RGB", (size, size), WHITE)
    image.paste(RED, (0, 0, half, half))
    image.paste(GREEN, (half, 0, size, half))
    image.paste(BLUE, (0, half, half, size))
    return image


def check_quadrants(image: Image.Image, size: int = 64, tol: int = 0) -> None:
    q1, q3 = size // 4, 3 * size // 4
    assert_close(image.getpixel((q1, q1)), RED, tol)
    assert_close(image.getpixel((q3, q1)), GREEN, tol)
    assert_close(image.getpixel((q1, q3)), BLUE, tol)
    assert_close(image.getpixel((q3, q3)), WHITE, tol)


@pytest.fixture()
def restore_max_pixels() -> Iterator[None]:
    saved = get_max_image_pixels()
    try:
        yield
    finally:
        set_max_image_pixels(saved)


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4000x3000 q90 JPEG (a smooth gradient, so it encodes in well under a second)."""
    data = np.empty((3000, 4000, 3), dtype=np.uint8)
    data[..., 0] = np.linspace(0, 255, 4000).astype(np.uint8)[None, :]  # red grows to the right
    data[..., 1] = np.linspace(0, 255, 3000).astype(np.uint8)[:, None]  # green grows downwards
    data[..., 2] = 128
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    Image.fromarray(data).save(path, quality=90)
    return path


# ---------------------------------------------------------------------------- extensions


def test_image_extensions_are_lower_case_with_dot() -> None:
    assert IMAGE_EXTENSIONS
    for ext in IMAGE_EXTENSIONS:
        assert ext.startswith(".") and ext == ext.lower() and len(ext) > 1
    for ext in (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"):
        assert ext in IMAGE_EXTENSIONS


def test_module_imports_neither_qt_nor_torch() -> None:
    code = (
        "import sys, resnet_gui.core.images; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6', 'PyQt5', 'PyQt6')]; "
        "sys.exit(bad and 1 or 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("suffix", "save_kwargs", "tol"),
    [
        (".jpg", {"quality": 95}, 40),
        (".png", {}, 0),
        (".bmp", {}, 0),
        (".gif", {}, 0),
        (".tif", {}, 0),
        (".webp", {"lossless": True}, 0),
        (".webp", {"quality": 90}, 40),
    ],
)
def test_format_round_trip(tmp_path: Path, suffix: str, save_kwargs: dict, tol: int) -> None:
    assert suffix in IMAGE_EXTENSIONS
    path = tmp_path / f"quadrants{suffix}"
    quadrants().save(path, **save_kwargs)
    image = load_image(path)
    assert_rgb(image)
    assert image.size == (64, 64)
    check_quadrants(image, tol=tol)


def test_png_named_jpg_is_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "actually_png.jpg"
    quadrants().save(path, format="PNG")
    image = load_image(path)
    check_quadrants(image)  # exact: it was decoded as the lossless PNG it is


def test_accepts_str_path(tmp_path: Path) -> None:
    path = tmp_path / "q.png"
    quadrants().save(path)
    check_quadrants(load_image(str(path)))


def test_result_is_detached_from_the_file(tmp_path: Path) -> None:
    """Fully loaded: the file can be overwritten afterwards without touching the pixels."""
    for suffix in (".jpg", ".png", ".bmp", ".tif"):
        path = tmp_path / f"q{suffix}"
        quadrants().save(path)
        image = load_image(path)
        path.write_bytes(b"")  # truncate: a lazily read or memory-mapped image would break
        assert getattr(image, "fp", None) is None
        check_quadrants(image, tol=40)


# ---------------------------------------------------------------------------- modes


def test_mode_L(tmp_path: Path) -> None:
    path = tmp_path / "l.png"
    Image.new("L", (8, 8), 100).save(path)
    image = load_image(path)
    assert_rgb(image)
    assert image.getpixel((3, 3)) == (100, 100, 100)


def test_mode_1(tmp_path: Path) -> None:
    path = tmp_path / "bilevel.png"
    bilevel = Image.new("1", (8, 8), 0)
    bilevel.paste(1, (4, 0, 8, 8))
    bilevel.save(path)
    image = load_image(path)
    assert image.getpixel((1, 1)) == BLACK
    assert image.getpixel((6, 1)) == WHITE


def test_mode_LA_composited_on_white(tmp_path: Path) -> None:
    path = tmp_path / "la.png"
    la = Image.new("LA", (30, 10), (0, 0))  # black, fully transparent
    la.paste((0, 255), (10, 0, 20, 10))  # black, opaque
    la.paste((0, 128), (20, 0, 30, 10))  # black, half transparent
    la.save(path)
    assert Image.open(path).mode == "LA"
    image = load_image(path)
    assert_rgb(image)
    assert image.getpixel((5, 5)) == WHITE
    assert image.getpixel((15, 5)) == BLACK
    assert_close(image.getpixel((25, 5)), (127, 127, 127), tol=1)


def test_mode_RGBA_composited_on_white(tmp_path: Path) -> None:
    path = tmp_path / "rgba.png"
    rgba = Image.new("RGBA", (30, 10), (0, 0, 0, 0))  # transparent black -> white, not black
    rgba.paste((255, 0, 0, 255), (10, 0, 20, 10))
    rgba.paste((0, 0, 255, 128), (20, 0, 30, 10))
    rgba.save(path)
    image = load_image(path)
    assert_rgb(image)
    assert image.getpixel((5, 5)) == WHITE
    assert image.getpixel((15, 5)) == RED
    assert_close(image.getpixel((25, 5)), (127, 127, 255), tol=1)


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_with_transparency_composited_on_white(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"palette{suffix}"
    palette_image = Image.new("P", (20, 10), 0)
    palette_image.putpalette([*RED, *BLUE] + [0, 0, 0] * 254)  # index 0 red, but transparent
    palette_image.paste(1, (10, 0, 20, 10))
    palette_image.save(path, transparency=0)
    assert Image.open(path).mode == "P"
    image = load_image(path)
    assert_rgb(image)
    assert image.getpixel((5, 5)) == WHITE  # transparent: white, not the red under it
    assert image.getpixel((15, 5)) == BLUE


def test_palette_without_transparency(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    palette_image = Image.new("P", (20, 10), 0)
    palette_image.putpalette([*RED, *BLUE] + [0, 0, 0] * 254)
    palette_image.paste(1, (10, 0, 20, 10))
    palette_image.save(path)
    image = load_image(path)
    assert image.getpixel((5, 5)) == RED
    assert image.getpixel((15, 5)) == BLUE


def test_rgb_png_with_transparent_colour(tmp_path: Path) -> None:
    path = tmp_path / "trns.png"
    rgb = Image.new("RGB", (20, 10), GREEN)
    rgb.paste(RED, (10, 0, 20, 10))
    rgb.save(path, transparency=GREEN)  # a tRNS chunk: green means transparent
    image = load_image(path)
    assert image.getpixel((5, 5)) == WHITE
    assert image.getpixel((15, 5)) == RED


@pytest.mark.parametrize("suffix", [".jpg", ".tif"])
def test_mode_CMYK_red_square(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"cmyk{suffix}"
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(path)  # C=0 M=100% Y=100% K=0: red
    assert Image.open(path).mode == "CMYK"
    image = load_image(path)
    assert_rgb(image)
    r, g, b = image.getpixel((16, 16))
    assert r > 200 and g < 60 and b < 60, (r, g, b)


def test_16_bit_png_gradient_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "gray16.png"
    row = np.linspace(0, 65535, 256).round().astype(np.uint16)
    Image.fromarray(np.tile(row, (4, 1))).save(path)
    assert Image.open(path).mode.startswith("I")  # the 16-bit path is the one tested
    image = load_image(path)
    assert_rgb(image)
    values = np.asarray(image)[0, :, 0].astype(int)
    assert values[0] == 0 and values[-1] == 255
    assert np.all(np.diff(values) >= 0)  # still a gradient, in order
    np.testing.assert_allclose(values, row / 257.0, atol=1)
    assert np.all(np.asarray(image)[0, :, 0] == np.asarray(image)[0, :, 2])  # grey


def _save_numeric_tiff(path: Path, data: np.ndarray, mode: str) -> None:
    Image.fromarray(data).save(path)
    assert Image.open(path).mode == mode


def test_mode_I_with_16_bit_values(tmp_path: Path) -> None:
    path = tmp_path / "i16range.tif"
    row = np.linspace(0, 65535, 256).round().astype(np.int32)
    _save_numeric_tiff(path, np.tile(row, (2, 1)), "I")
    values = np.asarray(load_image(path))[0, :, 0].astype(int)
    np.testing.assert_allclose(values, row / 257.0, atol=1)


def test_mode_I_with_8_bit_values_kept(tmp_path: Path) -> None:
    path = tmp_path / "i8range.tif"
    row = np.arange(256, dtype=np.int32)
    _save_numeric_tiff(path, np.tile(row, (2, 1)), "I")
    values = np.asarray(load_image(path))[0, :, 0].astype(int)
    np.testing.assert_array_equal(values, row)


def test_mode_I_out_of_16_bit_range_is_stretched(tmp_path: Path) -> None:
    path = tmp_path / "signed.tif"
    row = np.linspace(-1000, 1_000_000, 101).round().astype(np.int32)
    _save_numeric_tiff(path, np.tile(row, (2, 1)), "I")
    values = np.asarray(load_image(path))[0, :, 0].astype(int)
    assert values[0] == 0 and values[-1] == 255 and values[50] in (127, 128)
    assert np.all(np.diff(values) >= 0)


def test_mode_F_unit_range(tmp_path: Path) -> None:
    path = tmp_path / "float01.tif"
    row = np.linspace(0.0, 1.0, 256, dtype=np.float32)
    _save_numeric_tiff(path, np.tile(row, (2, 1)), "F")
    values = np.asarray(load_image(path))[0, :, 0].astype(int)
    np.testing.assert_allclose(values, row * 255.0, atol=1)


def test_mode_F_arbitrary_range_and_nan(tmp_path: Path) -> None:
    path = tmp_path / "float_any.tif"
    row = np.linspace(-2.0, 2.0, 101, dtype=np.float32)
    row[10] = np.nan
    _save_numeric_tiff(path, np.tile(row, (2, 1)), "F")
    values = np.asarray(load_image(path))[0, :, 0].astype(int)
    assert values[0] == 0 and values[-1] == 255 and values[50] in (127, 128)
    assert values[10] == 0  # NaN: the minimum, not garbage


# ---------------------------------------------------------------------------- EXIF


def _upright_red_over_blue(width: int = 60, height: int = 40) -> Image.Image:
    upright = Image.new("RGB", (width, height), RED)
    upright.paste(BLUE, (0, height // 2, width, height))
    return upright


# What a camera stores for each orientation tag, given the upright picture: the inverse of
# the transpose ImageOps.exif_transpose applies.
_STORED_FOR_ORIENTATION = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    upright = _upright_red_over_blue()
    stored = upright.transpose(_STORED_FOR_ORIENTATION[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"rotated{orientation}.jpg"
    stored.save(path, quality=95, exif=exif)
    with Image.open(path) as raw:
        assert raw.size == stored.size  # the file really is stored rotated

    image = load_image(path)
    assert_rgb(image)
    assert image.size == (60, 40)  # upright; for 6 and 8 the stored dims are swapped
    assert_close(image.getpixel((30, 8)), RED, tol=40)  # top half red
    assert_close(image.getpixel((30, 32)), BLUE, tol=40)  # bottom half blue
    assert_close(image.getpixel((5, 8)), RED, tol=40)
    assert_close(image.getpixel((55, 32)), BLUE, tol=40)


def test_draft_with_exif_rotation_keeps_short_side(tmp_path: Path, big_jpeg: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "portrait.jpg"
    with Image.open(big_jpeg) as landscape:
        landscape.save(path, quality=90, exif=exif)
    image = load_image(path, min_size=256)
    width, height = image.size
    assert width < height  # rotated to portrait after the (landscape) draft decode
    assert 256 <= width < 512
    assert (width, height) == (375, 500)


# ---------------------------------------------------------------------------- frames


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (16, 16), colour) for colour in (RED, GREEN, BLUE)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(path).n_frames == 3
    image = load_image(path)
    assert_rgb(image)
    assert image.getpixel((8, 8)) == RED
    assert getattr(image, "n_frames", 1) == 1


def test_animated_webp_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "anim.webp"
    frames = [Image.new("RGB", (16, 16), colour) for colour in (GREEN, RED, BLUE)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    assert Image.open(path).n_frames == 3
    image = load_image(path)
    assert_rgb(image)
    assert image.getpixel((8, 8)) == GREEN
    assert getattr(image, "n_frames", 1) == 1


def test_multipage_tiff_first_page(tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    pages = [Image.new("RGB", (16, 16), colour) for colour in (BLUE, RED)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    image = load_image(path)
    assert image.getpixel((8, 8)) == BLUE
    assert getattr(image, "n_frames", 1) == 1


# ---------------------------------------------------------------------------- draft


def test_draft_decodes_large_jpeg_at_reduced_scale(big_jpeg: Path) -> None:
    image = load_image(big_jpeg, min_size=256)
    assert_rgb(image)
    assert 256 <= min(image.size) < 512
    assert image.size == (500, 375)
    # Still the same picture: the gradient runs left to right in red, top to bottom in green.
    left, right = image.getpixel((10, 187)), image.getpixel((489, 187))
    top, bottom = image.getpixel((250, 10)), image.getpixel((250, 364))
    assert left[0] < 20 and right[0] > 235
    assert top[1] < 20 and bottom[1] > 235


def test_without_min_size_full_resolution(big_jpeg: Path) -> None:
    assert load_image(big_jpeg).size == (4000, 3000)


@pytest.mark.parametrize(
    ("min_size", "expected"), [(1000, (2000, 1500)), (1500, (2000, 1500)), (2000, (4000, 3000))]
)
def test_draft_never_goes_below_min_size(big_jpeg: Path, min_size: int, expected: tuple[int, int]) -> None:
    image = load_image(big_jpeg, min_size=min_size)
    assert image.size == expected
    assert min(image.size) >= min_size


def test_min_size_ignored_for_non_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (600, 400), RED).save(path)
    assert load_image(path, min_size=50).size == (600, 400)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_min_size_must_be_positive_int(tmp_path: Path, bad: object) -> None:
    path = tmp_path / "q.png"
    quadrants().save(path)
    with pytest.raises(ValueError):
        load_image(path, min_size=bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- bytes


def test_load_from_bytes_same_path(big_jpeg: Path) -> None:
    buffer = io.BytesIO()
    quadrants().save(buffer, format="PNG")
    check_quadrants(load_image_from_bytes(buffer.getvalue()))
    drafted = load_image_from_bytes(big_jpeg.read_bytes(), min_size=256)
    assert drafted.size == (500, 375)


def test_load_from_bytes_errors_name_the_source() -> None:
    with pytest.raises(ImageLoadError) as info:
        load_image_from_bytes(b"hello, not an image")
    assert info.value.reason == "not an image file or unsupported format"
    assert "<clipboard>" in str(info.value)
    with pytest.raises(ImageLoadError) as info:
        load_image_from_bytes(b"", name="dropped.png")
    assert info.value.reason == "no image data"
    assert "dropped.png" in str(info.value)


# ---------------------------------------------------------------------------- decompression bombs


@pytest.mark.parametrize(
    ("size", "what"),
    [((150, 100), "between 1x and 2x the limit: Pillow only warns"), ((300, 100), "over 2x: Pillow raises")],
)
def test_decompression_bomb_refused(
    tmp_path: Path, restore_max_pixels: None, size: tuple[int, int], what: str
) -> None:
    path = tmp_path / "bomb.png"
    Image.new("RGB", size, RED).save(path)
    filters_before = list(warnings.filters)
    set_max_image_pixels(10_000)
    assert get_max_image_pixels() == 10_000
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning leaks out either
        with pytest.raises(ImageTooLargeError) as info:  # its own type: the CLI and GUI offer a way out
            load_image(path)
    reason = info.value.reason
    assert "too large" in reason and "decompression bomb" in reason, what
    assert f"{size[0] * size[1]:,} pixels" in reason and "10,000" in reason
    assert warnings.filters == filters_before  # the global filters are left as they were


def test_bomb_check_from_threads_leaves_warning_filters_alone(
    tmp_path: Path, restore_max_pixels: None
) -> None:
    small, bomb = tmp_path / "small.png", tmp_path / "bomb.png"
    Image.new("RGB", (50, 50), RED).save(small)
    Image.new("RGB", (150, 100), RED).save(bomb)  # warning range for a 10,000 limit
    filters_before = list(warnings.filters)
    set_max_image_pixels(10_000)

    def load(path: Path) -> str:
        try:
            load_image(path)
        except ImageLoadError as exc:
            return exc.reason
        return "ok"

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(load, [small, bomb] * 40))
    assert results[0::2] == ["ok"] * 40
    assert all("decompression bomb" in reason for reason in results[1::2])
    assert warnings.filters == filters_before


def test_image_at_limit_loads_and_limit_can_be_lifted(tmp_path: Path, restore_max_pixels: None) -> None:
    path = tmp_path / "ok.png"
    Image.new("RGB", (100, 100), RED).save(path)
    set_max_image_pixels(10_000)
    assert load_image(path).getpixel((50, 50)) == RED
    set_max_image_pixels(9_999)
    with pytest.raises(ImageLoadError):
        load_image(path)
    set_max_image_pixels(None)
    assert load_image(path).size == (100, 100)


def test_default_limit_is_pillows() -> None:
    assert get_max_image_pixels() == Image.MAX_IMAGE_PIXELS
    assert get_max_image_pixels() is not None


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10"])
def test_set_max_image_pixels_validates(restore_max_pixels: None, bad: object) -> None:
    with pytest.raises(ValueError):
        set_max_image_pixels(bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- broken input


def _expect_error(path: Path, reason: str) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert info.value.reason == reason
    assert info.value.path == path
    assert str(path) in str(info.value)
    return info.value


def test_truncated_jpeg(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    full = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(full, format="JPEG")
    path = tmp_path / "truncated.jpg"
    path.write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    _expect_error(path, "file is truncated or corrupt")


def test_truncated_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    full = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(full, format="PNG")
    path = tmp_path / "truncated.png"
    path.write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    _expect_error(path, "file is truncated or corrupt")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    _expect_error(path, "file is empty")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    _expect_error(path, "not an image file or unsupported format")


def test_missing_file(tmp_path: Path) -> None:
    _expect_error(tmp_path / "nope.jpg", "no such file")


def test_path_through_a_file(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    _expect_error(tmp_path / "plain" / "child.jpg", "no such file")


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    _expect_error(folder, "is a directory")


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.png"
    quadrants().save(path)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            # Running as root (or with CAP_DAC_OVERRIDE): mode 000 does not stop reads, so
            # simulate the refusal where the loader opens the file.
            from resnet_gui.core import userfiles

            def refuse(file: object, *args: object, **kwargs: object) -> object:
                raise PermissionError(13, "Permission denied", str(file))

            monkeypatch.setattr(userfiles, "_open_descriptor", refuse)
        _expect_error(path, "permission denied")
    finally:
        path.chmod(0o644)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
def test_only_image_load_errors_escape(tmp_path: Path) -> None:
    """Garbage after a valid signature: whatever Pillow raises inside, the caller sees ImageLoadError."""
    rng = np.random.default_rng(2)
    good = io.BytesIO()
    quadrants().save(good, format="PNG")
    header = good.getvalue()[:40]
    for index in range(5):
        path = tmp_path / f"garbage{index}.png"
        path.write_bytes(header + rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
        with pytest.raises(ImageLoadError):
            load_image(path)
    for signature in (b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"II*\x00", b"RIFF\x00\x00\x00\x00WEBPVP8 "):
        path = tmp_path / "garbage.bin"
        path.write_bytes(signature + rng.integers(0, 256, 200, dtype=np.uint8).tobytes())
        with pytest.raises(ImageLoadError):
            load_image(path)
