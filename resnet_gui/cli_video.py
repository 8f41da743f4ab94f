"""``resnet-gui classify-video FILE``: the top-k classes of a video's frames over time.

Wired into :mod:`resnet_gui.cli` with :func:`add_parsers` and :data:`HANDLERS`. Building the parser
imports neither torch nor PyAV. Progress goes to stderr; the rows to ``--out`` (CSV, JSON Lines or
JSON, written whole or not at all) or, without it, as a table on stdout. Ctrl-C stops after the
current batch and keeps (writes) the frames done; a damaged file keeps the frames before the damage.
Every bad input is one sentence on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from resnet_gui.cli_options import (
    add_backend_option,
    add_min_confidence_option,
    add_model_options,
    add_overwrite_option,
    batch_size_option,
    top_k_type,
)
from resnet_gui.core.text import printable, printable_path

__all__ = ["DEFAULT_EVERY", "HANDLERS", "add_parsers", "every_type", "run_classify_video"]

DEFAULT_EVERY = "1s"
EXIT_CANCELLED = 130


def every_type(text: str) -> float | None:
    """An argparse type: ``0.5s``, ``0.5``, ``500ms``, ``2s`` (seconds), or ``all`` (None)."""
    from resnet_gui.core.video import parse_interval

    try:
        return parse_interval(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


every_type.__name__ = "interval"


def add_parsers(commands: Any) -> None:
    """Add the ``classify-video`` sub-command to ``commands`` (argparse sub-parsers)."""
    from resnet_gui.core.video_results import VIDEO_FORMATS

    video = commands.add_parser(
        "classify-video",
        help="the top classes of a video's frames over time, as a table or a CSV/JSON file",
        description="Classify the frames of a video (MP4, MOV, MKV, WebM, AVI, … anything FFmpeg reads; "
        "needs PyAV: pip install 'resnet-gui[video]'), one frame per --every seconds. The video is "
        "decoded as it goes, never loaded whole. Ctrl-C stops and keeps the frames done; a damaged or "
        "truncated file keeps the frames before the damage and says where it stopped.",
    )
    video.add_argument("video", metavar="FILE", help="a video file")
    video.add_argument(
        "--every",
        type=every_type,
        default=every_type(DEFAULT_EVERY),
        metavar="TIME",
        help=f"one frame per TIME of the video: 0.5s, 0.5, 500ms, 2s, or 'all' for every frame "
        f"(default {DEFAULT_EVERY})",
    )
    video.add_argument(
        "--out", metavar="FILE", help="write the per-frame results here (default: a table on standard output)"
    )
    video.add_argument(
        "--format",
        choices=list(VIDEO_FORMATS),
        help="; ".join(f"{name}: {fmt.description}" for name, fmt in VIDEO_FORMATS.items())
        + " (default: from the --out suffix, else csv; without --out: written to standard output)",
    )
    add_overwrite_option(video)
    video.add_argument(
        "--top-k", type=top_k_type(), default=5, metavar="K", help="classes recorded per frame (default 5)"
    )
    add_model_options(video)
    add_backend_option(video)
    video.add_argument(
        "--batch-size",
        **batch_size_option(8),  # type: ignore[arg-type]
        help="frames per forward pass (default 8)",
    )
    add_min_confidence_option(video, "mark a frame's top-1 class", " (its not_sure column)")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


class _Table:
    """The rows as a readable table on stdout: time, frame, top-1 (marked not sure), the others."""

    def __init__(self, categories: tuple[str, ...], top_k: int, threshold: float | None) -> None:
        self.width = min(30, max((len(printable(name)) for name in categories), default=5))
        self.top_k = top_k
        self.threshold = threshold
        self.count = 0

    def header(self) -> str:
        return f"{'TIME':>10}  {'FRAME':>6}  {'TOP-1':<{self.width}}  {'PROB':>8}" + (
            "  OTHERS" if self.top_k > 1 else ""
        )

    def line(self, result: Any) -> str:
        from resnet_gui.core.confidence import NOT_SURE_TEXT

        top1 = result.predictions[0]
        label = printable(top1.label)[: self.width]
        mark = f"  ({NOT_SURE_TEXT})" if result.not_sure(self.threshold) else ""
        others = ", ".join(
            f"{printable(p.label)} {p.probability * 100:.1f} %" for p in result.predictions[1:]
        )
        text = f"{_seconds(result.time_s):>10}  {result.index:>6}  {label:<{self.width}}  "
        text += f"{top1.probability * 100:6.2f} %{mark}"
        return text + (f"  {others}" if others else "")


def _progress_line(item: Any) -> str:
    done = f"{item.done} frames"
    where = ""
    if item.time_s is not None:
        where = f" at {item.time_s:.1f} s" + (f" of {item.duration_s:.1f} s" if item.duration_s else "")
    bar = ""
    if item.fraction is not None:
        filled = round(item.fraction * 30)
        bar = f" [{'#' * filled}{'.' * (30 - filled)}]"
    rate = f" {item.frames_per_second:.1f} frames/s" if item.done else ""
    return f"Classifying{bar} {done}{where}{rate}"


def run_classify_video(args: argparse.Namespace) -> int:
    """Open the video (one sentence if it cannot be read), load the model, classify, write."""
    from resnet_gui.cli import _load_classifier, _model_inputs
    from resnet_gui.core.outputs import OutputTarget, check_outputs, claim_outputs
    from resnet_gui.core.video import VideoFileSource
    from resnet_gui.core.video_results import video_format_for

    video_format = video_format_for(args.out, args.format) if (args.out or args.format) else None
    outputs = [OutputTarget(Path(args.out), video_format.kind)] if args.out and video_format else []
    source = VideoFileSource(args.video, args.every)  # before the model: a bad file is refused at once
    try:
        inputs = [args.video, *_model_inputs(args)]
        check_outputs(outputs, inputs=inputs, overwrite=args.overwrite)
        info = source.info
        print(f"{printable_path(args.video)}: {printable(info.summary())}", file=sys.stderr)
        classifier = _load_classifier(args)
        with claim_outputs(outputs, inputs=inputs, overwrite=args.overwrite):
            return _run(args, classifier, source, video_format)
    finally:
        source.close()


def _run(args: argparse.Namespace, classifier: Any, source: Any, video_format: Any) -> int:
    from resnet_gui.cli import _runs_on
    from resnet_gui.cli_training import _ctrl_c_cancels, _Status
    from resnet_gui.core.atomic import atomic_path
    from resnet_gui.core.confidence import unsure_threshold_for
    from resnet_gui.core.video import VideoError, classify_video
    from resnet_gui.core.video_results import VideoRun

    threshold = unsure_threshold_for(classifier, args.min_confidence)
    top_k = min(args.top_k, len(classifier.categories))
    status = _Status()
    log = sys.stderr

    def say(text: str) -> None:
        status.clear()
        print(text, file=log, flush=True)

    every = "every frame" if args.every is None else f"one frame per {args.every:g} s"
    below = f"; not sure below {threshold * 100:.1f} %" if threshold is not None else ""
    say(
        f"Classifying {every} with {printable(classifier.name)} on {_runs_on(classifier)} "
        f"(batch {args.batch_size}{below})"
    )
    run = VideoRun(str(args.video), classifier.name, args.every, threshold, top_k)
    table = None if video_format is not None else _Table(classifier.categories, top_k, threshold)
    out = Path(args.out) if args.out else None
    began = time.monotonic()
    state = _State()

    def classify(write: Callable[[Any], None]) -> None:
        with _ctrl_c_cancels(say) as cancel:
            state.cancel = cancel
            try:
                for result in classify_video(
                    classifier,
                    source,
                    top_k=top_k,
                    batch_size=args.batch_size,
                    progress=lambda item: status.show(_progress_line(item), force=item.done == 0),
                    cancel=cancel,
                ):
                    write(result)
                    state.add(result)
            except VideoError as error:
                state.failure = error
            except KeyboardInterrupt:  # a second Ctrl-C: stop now, still keep what was done
                state.interrupted = True
            finally:
                status.clear()
        state.interrupted = state.interrupted or cancel()
        if state.failure is not None and not state.count:
            raise state.failure  # nothing to keep: no file is left behind

    if out is not None:
        with atomic_path(out) as tmp, open(tmp, "wb") as handle:
            writer = video_format.writer(handle, run)
            classify(writer.write)
            writer.finish(state.stopped_sentence())
    elif video_format is not None:
        stream = _stdout_bytes()
        writer = video_format.writer(stream, run)
        classify(writer.write)
        writer.finish(state.stopped_sentence())
    else:
        assert table is not None
        print(table.header())

        def show(result: Any) -> None:
            status.clear()
            print(table.line(result), flush=True)

        classify(show)
    return _report(args, state, time.monotonic() - began, video_format)


class _State:
    """What the run did: how many frames, the last time, why it stopped early."""

    def __init__(self) -> None:
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None
        self.failure: Exception | None = None
        self.interrupted = False
        self.cancel: Callable[[], bool] = lambda: False

    def add(self, result: Any) -> None:
        self.count += 1
        if self.first is None:
            self.first = result.time_s
        self.last = result.time_s

    def stopped_sentence(self) -> str | None:
        if self.failure is not None:
            return str(self.failure)
        if self.interrupted or self.cancel():
            return f"Interrupted after {self.count} frames (at {_seconds(self.last)})."
        return None


def _stdout_bytes() -> IO[bytes]:
    stdout: Any = getattr(sys.stdout, "wrapped", sys.stdout)  # the CLI's guard wraps it
    stdout.flush()
    buffer: IO[bytes] = getattr(stdout, "buffer", stdout)
    return buffer


def _report(args: argparse.Namespace, state: _State, seconds: float, video_format: Any) -> int:
    # The table or the results on stdout keep stdout for them; the summary then goes to stderr.
    say = sys.stdout if args.out else sys.stderr
    rate = f" ({state.count / seconds:.1f} frames/s)" if seconds > 0 and state.count else ""
    span = f", {_seconds(state.first)} to {_seconds(state.last)}" if state.count else ""
    print(f"Classified {state.count} frames{span} in {seconds:.1f} s{rate}.", file=say)
    where = f" are in {printable_path(args.out)}" if args.out else " are above"
    if args.out:
        print(f"Results: {printable_path(args.out)} ({video_format.name})", file=say)
    if state.failure is not None:
        print(f"resnet-gui: error: {printable(str(state.failure))}", file=sys.stderr)
        print(f"The {state.count} frames classified before it{where}.", file=sys.stderr)
        return int(getattr(state.failure, "exit_code", 3))
    if state.interrupted:
        print(
            f"Interrupted at {_seconds(state.last)}: the {state.count} frames classified so far{where}.",
            file=sys.stderr,
        )
        return EXIT_CANCELLED
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {"classify-video": run_classify_video}
