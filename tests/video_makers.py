"""Short videos made from photos, for the live-view tests, benchmark and screenshot (PyAV encodes).

Each photo is shown for ``frames_per_photo`` frames, resized to ``size``, so a test knows which
photo any frame index shows; a little noise per frame makes consecutive frames differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def video_encoder() -> tuple[str, str] | None:
    """A codec this PyAV build encodes and a container for it, or None (no PyAV, no encoder)."""
    try:
        import av
    except ImportError:
        return None
    for codec, suffix in (("libx264", ".mkv"), ("libvpx", ".webm"), ("mpeg4", ".ts")):
        try:
            av.codec.Codec(codec, "w")
        except Exception:
            continue
        return codec, suffix
    return None


def require_video_encoder() -> tuple[str, str]:
    """:func:`video_encoder`'s codec and container, or the test is skipped saying which is missing."""
    pytest.importorskip("av", reason="PyAV makes and reads the test videos (pip install 'resnet-gui[video]')")
    found = video_encoder()
    if found is None:
        pytest.skip("this PyAV build has no video encoder")
    return found


def make_photo_video(
    folder: Path,
    photos: Sequence[Path | Image.Image | np.ndarray],
    *,
    fps: int = 30,
    frames_per_photo: int = 15,
    size: tuple[int, int] = (160, 120),
    name: str = "photos",
    seed: int = 0,
) -> Path:
    """Write ``photos`` as a video of ``fps`` frames per second into ``folder``; its path."""
    import av

    found = video_encoder()
    if found is None:
        raise RuntimeError("this PyAV build has no video encoder")
    codec, suffix = found
    rng = np.random.default_rng(seed)
    pictures = []
    for photo in photos:
        image = (
            photo
            if isinstance(photo, Image.Image)
            else (Image.fromarray(photo) if isinstance(photo, np.ndarray) else Image.open(photo))
        )
        pictures.append(np.asarray(image.convert("RGB").resize(size), dtype=np.int16))
    path = folder / f"{name}{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for picture in pictures:
            for _ in range(frames_per_photo):
                noise = rng.integers(-6, 7, picture.shape)
                array = np.clip(picture + noise, 0, 255).astype(np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
