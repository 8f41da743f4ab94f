"""Frames per second classified by ``resnet-gui classify-video`` on a generated 10 s video.

The video is made from the sample photos (assets/samples): each one for a third of the time, with a
slow zoom so that no two frames are the same, at 1280x720 and 30 fps, H.264 (libx264; MPEG-4 part 2
where this PyAV has no libx264), written to a temporary folder. The command runs as a user runs it
(a fresh process, the default model, ``--out`` a CSV); the figure is its own "frames/s" (from the
first frame to the last, model loading excluded) and the process's wall time (everything). Decoding
alone (:class:`~resnet_gui.core.video.VideoFileSource`, every frame to RGB) is timed too, to show how
much of the run the model takes.

    .venv/bin/python benchmarks/video_throughput.py [--every all --every 0.5s] [--device cpu]
    .venv/bin/python benchmarks/video_throughput.py --make-only /tmp/samples-10s.mp4
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "assets" / "samples"


def make_video(path: Path, seconds: float = 10.0, fps: int = 30, size: tuple[int, int] = (1280, 720)) -> Path:
    photos = [Image.open(p).convert("RGB") for p in sorted(SAMPLES.glob("*.jpg"))]
    codec = "libx264"
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        codec = "mpeg4"
    total = round(seconds * fps)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for index in range(total):
            photo = photos[index * len(photos) // total]
            zoom = 1.0 + 0.2 * (index % (total // len(photos))) / (total / len(photos))
            width, height = photo.size
            crop_w, crop_h = width / zoom, height / zoom
            box = ((width - crop_w) / 2, (height - crop_h) / 2, (width + crop_w) / 2, (height + crop_h) / 2)
            picture = photo.resize(size, Image.Resampling.BILINEAR, box=box)
            frame = av.VideoFrame.from_ndarray(np.asarray(picture), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_rate(path: Path) -> float:
    sys.path.insert(0, str(REPO))
    from resnet_gui.core.video import VideoFileSource

    began = time.perf_counter()
    with VideoFileSource(path) as source:
        count = sum(1 for _ in source)
    return count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", action="append", help="--every values to run (default: all, 0.5s)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--make-only", type=Path, metavar="FILE", help="only write the video there")
    args = parser.parse_args()
    if args.make_only:
        make_video(args.make_only)
        print(f"wrote {args.make_only}")
        return
    with tempfile.TemporaryDirectory() as folder:
        video = make_video(Path(folder) / "samples-10s.mp4")
        print(f"video: {video.stat().st_size / 1e6:.1f} MB, 10 s, 1280x720, 30 fps")
        print(f"decoding alone: {decode_rate(video):.0f} frames/s")
        for every in args.every or ["all", "0.5s"]:
            command = [
                str(REPO / ".venv" / "bin" / "resnet-gui"),
                "classify-video",
                str(video),
                "--every",
                every,
                "--device",
                args.device,
                "--out",
                str(Path(folder) / "results.csv"),
                "--overwrite",
            ]
            began = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            wall = time.perf_counter() - began
            line = next(line for line in done.stdout.splitlines() if line.startswith("Classified"))
            rate = re.search(r"\(([\d.]+) frames/s\)", line)
            runs_on = next((line for line in done.stderr.splitlines() if " on " in line), "")
            print(f"--every {every}: {line}  [process wall {wall:.1f} s]  {runs_on.strip()}")
            assert rate is not None


if __name__ == "__main__":
    main()
