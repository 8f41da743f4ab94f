"""How long showing one moment of a video takes: :func:`~resnet_gui.core.video_timeline.read_frame_at`
(seek to the keyframe before, decode forward), what a click on the app's video timeline does.

The video is made from the sample photos (assets/samples), 3 minutes at 640x360 and 30 fps, H.264
with x264's ultrafast preset (a keyframe every 250 frames, 8.3 s: the worst case is decoding 249
frames), in a temporary folder. It reads the frame at 20 random times and checks each is the frame
shown then (its time at or just before the time asked).

    .venv/bin/python benchmarks/video_seek.py [--minutes 3] [--times 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

from resnet_gui.core.video_timeline import read_frame_at

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "assets" / "samples"
FPS, SIZE = 30, (640, 360)


def make_video(path: Path, minutes: float) -> Path:
    frames = [np.asarray(Image.open(p).convert("RGB").resize(SIZE)) for p in sorted(SAMPLES.glob("*.jpg"))]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for index in range(round(minutes * 60 * FPS)):
            array = frames[(index // (5 * FPS)) % len(frames)]  # a photo for 5 s, then the next
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--times", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = make_video(Path(folder) / "samples.mkv", args.minutes)
        rng = np.random.default_rng(0)
        seconds = []
        for moment in rng.uniform(0, args.minutes * 60 - 1, args.times):
            began = time.perf_counter()
            frame = read_frame_at(path, float(moment))
            seconds.append(time.perf_counter() - began)
            assert moment - 1 / FPS - 1e-6 <= frame.time_s <= moment + 1e-6, (frame.time_s, moment)
        size = path.stat().st_size / 1e6
    print(
        f"{args.minutes:g} min {SIZE[0]}x{SIZE[1]} {FPS} fps H.264 ({size:.1f} MB): read_frame_at at "
        f"{args.times} random times: median {statistics.median(seconds) * 1000:.0f} ms, "
        f"max {max(seconds) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
