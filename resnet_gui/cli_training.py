"""``resnet-gui finetune`` and ``resnet-gui evaluate``: the command-line face of core.training.

Wired into :mod:`resnet_gui.cli` with :func:`add_parsers` and :data:`HANDLERS`. Errors are
:class:`~resnet_gui.core.errors.ResNetGuiError` (printed as one sentence by the CLI's main);
progress goes to stderr, the epoch table and the results to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from resnet_gui.cli_options import (
    add_image_options,
    add_model_options,
    add_overwrite_option,
    batch_size_option,
    number,
    whole_number,
)
from resnet_gui.core.errors import OutputError, ResNetGuiError
from resnet_gui.core.modes import MODE_KEYS, TRAINING_MODES
from resnet_gui.core.text import printable, printable_path

__all__ = ["HANDLERS", "add_parsers", "run_evaluate", "run_finetune"]

EXIT_CANCELLED = 130
MODES = MODE_KEYS  # core.modes: torch-free, so `resnet-gui --help` stays fast
SCRATCH_MODE = next(key for key, mode in TRAINING_MODES.items() if mode.from_scratch)
DEFAULT_SCRATCH_MODEL = "cifar_resnet20"  # core.training.scratch's (torch-free here)


def add_parsers(commands: Any) -> None:
    """Add the ``finetune`` and ``evaluate`` sub-commands to ``commands`` (argparse sub-parsers)."""
    finetune = commands.add_parser(
        "finetune",
        help="train a model on your own labelled folders of images",
        description="Fine-tune a ResNet on FOLDER: one sub-folder per class, or train/ and val/ "
        "(and test/) folders that each hold the class sub-folders. The images are checked first "
        "(unreadable files are left out; --clean also leaves out tiny images, duplicates and "
        "validation images copied into train). The result is a .safetensors bundle that "
        "`resnet-gui classify --model BUNDLE` uses directly. Ctrl-C stops after the current step; "
        "run the same command with --resume to continue. Several processes (torch DDP): --nproc N on "
        "this machine; on several machines run `torchrun --nnodes M --nproc-per-node N "
        "--rdzv-backend c10d --rdzv-endpoint HOST:PORT -m resnet_gui finetune FOLDER --out BUNDLE …` on "
        "each (the same FOLDER and --out paths on a shared disk; rank 0 writes the bundle).",
    )
    finetune.add_argument("folder", help="the labelled image folder")
    add_model_options(finetune, "the model to start from")
    add_image_options(finetune)
    finetune.add_argument(
        "--mode",
        choices=MODES,
        help="; ".join(f"{mode.key}: {mode.cli_help}" for mode in TRAINING_MODES.values()),
    )
    finetune.add_argument(
        "--from-scratch",
        action="store_true",
        help=f"the same as --mode {SCRATCH_MODE}: a network made for small photos (default "
        f"{DEFAULT_SCRATCH_MODEL}; any cifar_* of `resnet-gui models`) learns from random weights",
    )
    finetune.add_argument(
        "--epochs",
        type=whole_number(1, 10_000),
        metavar="N",
        help="epochs (default: 40 head, 4 partial, 6 full, 15 scratch)",
    )
    finetune.add_argument("--batch-size", **batch_size_option(None), help="images per step (default 32)")  # type: ignore[arg-type]
    finetune.add_argument(
        "--lr",
        type=number(0, 10, low_open=True),
        metavar="LR",
        help="learning rate of the classifier (scratch: of every layer, default 0.1 x batch size / 128)",
    )
    finetune.add_argument("--optimizer", choices=("sgd", "adamw"), help="default: sgd for head, else adamw")
    finetune.add_argument(
        "--val-fraction",
        type=number(0, 1, high_open=True),
        default=0.2,
        metavar="F",
        help="share of each class held out for validation when FOLDER has no val/ folder (default 0.2)",
    )
    finetune.add_argument(
        "--seed",
        type=whole_number(0, 2**32 - 1),
        metavar="N",
        help="seed of the split and the training (default 0)",
    )
    finetune.add_argument(
        "--patience",
        type=whole_number(0, 10_000),
        metavar="N",
        help="stop after N epochs without progress (0: never)",
    )
    finetune.add_argument(
        "--label-smoothing", type=number(0, 1, high_open=True), metavar="S", help="default 0.1"
    )
    finetune.add_argument(
        "--views",
        type=whole_number(1, 64),
        metavar="N",
        help="augmented views per training image to cache (head/partial)",
    )
    finetune.add_argument(
        "--probe-epochs",
        type=whole_number(0, 10_000),
        metavar="N",
        help="classifier-only epochs first (partial/full)",
    )
    finetune.add_argument(
        "--color-jitter", type=number(0, 1), metavar="J", help="colour jitter strength, e.g. 0.2"
    )
    finetune.add_argument(
        "--no-feature-cache",
        action="store_true",
        help="recompute the frozen layers on freshly augmented images every epoch (much slower)",
    )
    finetune.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="keep computed features on disk here, to skip the extraction next time "
        "(default for head mode: the app's data folder; partial-mode features are large, so only with this)",
    )
    finetune.add_argument(
        "--no-disk-cache", action="store_true", help="keep computed features in memory only"
    )
    finetune.add_argument(
        "--bf16", action="store_true", help="bf16 autocast on the CPU (only for CPUs with native bf16)"
    )
    finetune.add_argument(
        "--out",
        metavar="BUNDLE",
        help="the .safetensors file to write, or a folder to write it in (default: in the app's data folder)",
    )
    add_overwrite_option(finetune)
    finetune.add_argument("--resume", action="store_true", help="continue the interrupted run of --out")
    finetune.add_argument(
        "--nproc",
        type=whole_number(1, 4096),
        default=1,
        metavar="N",
        help="train on N local processes with torch DDP (gloo on the CPU, NCCL with a GPU each); the "
        "same split and results as one process (default 1)",
    )
    finetune.add_argument(
        "--clean", action="store_true", help="leave out the files the health check suggests (see the report)"
    )
    finetune.add_argument(
        "--check",
        action="store_true",
        help="only check the images, show the split and the time the run would take here, then stop",
    )
    finetune.add_argument(
        "--save-on-cancel", action="store_true", help="on Ctrl-C, also save the best model so far"
    )
    finetune.add_argument(
        "--add",
        metavar="CSV",
        help="also train on the photos listed in CSV (header 'path,class'; relative paths from the CSV's "
        "folder), each of an existing class; they are not copied nor moved, and the bundle's split "
        "records them, so --resume and a retrain see them",
    )

    evaluate = commands.add_parser(
        "evaluate",
        help="accuracy, per-class precision/recall/F1 and confusion matrix on a labelled folder",
        description="Score a model on FOLDER (one sub-folder per class, or train/val/test folders: then "
        "the test split if present, else val). Class folders are matched to the model's class names.",
    )
    evaluate.add_argument("folder", help="the labelled image folder")
    add_model_options(evaluate, "the model to score (e.g. a fine-tuned bundle)")
    add_image_options(evaluate)
    evaluate.add_argument(
        "--split",
        metavar="NAME",
        help="train, val or test: that sub-folder, or for a class folder that part of the split "
        "recorded in the bundle",
    )
    evaluate.add_argument(
        "--out-dir",
        metavar="DIR",
        help="write report.json, confusion_matrix.csv/.png, reliability_diagram.png and predictions.csv here",
    )
    add_overwrite_option(evaluate)
    evaluate.add_argument(
        "--top-wrong",
        type=whole_number(0, 100_000),
        default=10,
        metavar="N",
        help="most confidently wrong images to list",
    )
    evaluate.add_argument(
        "--label-issues",
        metavar="CSV",
        help="also look for possible label errors in the training data of a fine-tuned model (confident "
        "learning: its validation photos, and its training photos cross-validated) and write them, with "
        "the top losses of this evaluation, to CSV",
    )
    evaluate.add_argument("--batch-size", **batch_size_option(32), help="images per batch")  # type: ignore[arg-type]
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")


# --- display ----------------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "?"
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


def _bar(fraction: float, width: int = 24) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "#" * filled + "." * (width - filled)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:5.1f} %"


class _Status:
    """One progress line on stderr: redrawn in place on a terminal, a line every 30 s otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.shown_at = 0.0
        self.next_line = time.monotonic() + 30.0
        self.visible = False

    def show(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            if force or now - self.shown_at >= 0.1:
                print(f"\r\x1b[K{text}", end="", file=self.stream, flush=True)
                self.shown_at, self.visible = now, True
        elif force or now >= self.next_line:
            print(text, file=self.stream, flush=True)
            self.next_line = now + 30.0

    def clear(self) -> None:
        if self.tty and self.visible:
            print("\r\x1b[K", end="", file=self.stream, flush=True)
            self.visible = False


@contextlib.contextmanager
def _ctrl_c_cancels(say: Callable[[str], None]) -> Iterator[Callable[[], bool]]:
    """A first Ctrl-C asks the run to stop cleanly (after the current step); a second one aborts."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag.is_set
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()
        say("Stopping after the current step (Ctrl-C again to abort)…")

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


# --- finetune ---------------------------------------------------------------------------------


def _config_from_args(args: argparse.Namespace, base: Any | None):
    """The run's settings: a resumed run's own, with whatever the command line sets explicitly."""
    import dataclasses

    from resnet_gui.core.training import TrainConfig

    config = base if base is not None else TrainConfig(mode=args.mode or "head")
    explicit = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "seed": args.seed,
        "patience": args.patience,
        "label_smoothing": args.label_smoothing,
        "cached_views": args.views,
        "probe_epochs": args.probe_epochs,
        "color_jitter": args.color_jitter,
    }
    changes = {k: v for k, v in explicit.items() if v is not None}
    if args.mode is not None:
        changes["mode"] = args.mode
    if args.no_feature_cache:
        changes["cache_features"] = False
    if args.bf16:
        changes["bf16"] = True
    changes["device"] = args.device
    return dataclasses.replace(config, **changes)


def _scratch_arguments(args: argparse.Namespace) -> None:
    """``--from-scratch`` is ``--mode scratch``; it takes a network's name (default ResNet-20), not
    weights. Sets ``args.mode`` and ``args.model``; a contradiction is one sentence."""
    if args.from_scratch:
        if args.mode not in (None, SCRATCH_MODE):
            raise ResNetGuiError(
                f"--from-scratch is the {SCRATCH_MODE} mode: leave out --mode {args.mode} or --from-scratch."
            )
        args.mode = SCRATCH_MODE
    if args.mode != SCRATCH_MODE:
        return
    if args.weights:
        raise ResNetGuiError(
            "Training from scratch starts from random weights: leave out --weights and name a network "
            f"with --model (default {DEFAULT_SCRATCH_MODEL})."
        )
    if not args.resume:
        args.model = args.model or DEFAULT_SCRATCH_MODEL


def _load_base(args: argparse.Namespace, model_ref: str | None, mode: str, seed: int) -> Any:
    """The model to start from: the named one with its weights, or from scratch an untrained one."""
    from resnet_gui.core.download import terminal_progress
    from resnet_gui.core.models import load_model

    if mode == SCRATCH_MODE:
        from resnet_gui.core.training.scratch import untrained_from_reference

        return untrained_from_reference(model_ref, seed=seed)
    return load_model(model_ref, progress=terminal_progress(), allow_download=not args.no_download)


def _bundle_path(out: str | None, folder: Path, architecture: str, mode: str) -> Path:
    """Where the bundle goes: ``--out`` (a file, or a folder to put the default name in), else the default."""
    from resnet_gui.core.training import normalise_bundle_path

    default = _default_out(folder, architecture, mode)
    if out is None:
        return default
    if Path(out).is_dir():
        return Path(out) / default.name
    return normalise_bundle_path(out)


def _default_out(folder: Path, architecture: str, mode: str) -> Path:
    from resnet_gui.core import paths

    name = folder.resolve().name or "dataset"
    return paths.data_dir() / "models" / f"{name}-{architecture}-{mode}.safetensors"


def _print_health(report: Any, out: TextIO) -> None:
    layout = "train/val folders" if report.layout == "splits" else "class folders"
    print(f"Dataset: {printable_path(report.root)} ({layout})", file=out)
    names = {name: printable(name) for name in report.classes}
    width = max((len(shown) for shown in names.values()), default=5)
    splits = list(report.counts)
    header = f"  {'class':<{width}}  " + "  ".join(f"{split:>6}" for split in splits)
    print(header, file=out)
    for name, shown in names.items():
        print(
            f"  {shown:<{width}}  " + "  ".join(f"{report.counts[s].get(name, 0):>6}" for s in splits),
            file=out,
        )
    for line in report.warnings():
        print(f"  ! {printable(line)}", file=out)


def run_finetune(args: argparse.Namespace) -> int:
    """Check the folder, split it, train with a progress bar and an epoch table, save the bundle."""
    from resnet_gui.core.outputs import OutputTarget, claim_outputs
    from resnet_gui.core.training import (
        Progress,
        Split,
        checkpoint_path,
        iter_health,
        make_split,
        normalise_bundle_path,
        read_checkpoint_info,
        scan_dataset,
        sidecar_path,
    )

    out_stream = sys.stdout
    status = _Status()
    rank = _torchrun_rank()
    if rank is not None and args.nproc > 1:
        raise ResNetGuiError(
            "Under torchrun, leave out --nproc: torchrun's --nproc-per-node starts the processes."
        )
    if args.nproc > 1:
        from resnet_gui.core.training.distributed import check_process_count

        check_process_count(args.nproc, args.device)
    if rank not in (None, 0):  # one rank prints: the others run silently
        out_stream = io.StringIO()
        status = _Status(io.StringIO())
    folder = Path(args.folder)
    _scratch_arguments(args)
    dataset = scan_dataset(folder)
    report = None
    for item in iter_health(dataset):
        if isinstance(item, Progress):
            status.show(f"Checking images  [{_bar(item.fraction)}] {item.done}/{item.total}")
        else:
            report = item
    status.clear()
    assert report is not None
    _print_health(report, out_stream)

    model_ref = args.weights or args.model
    info = None
    loaded = None
    if args.resume:
        if args.out and not Path(args.out).is_dir():
            info = read_checkpoint_info(args.out)
            where = normalise_bundle_path(args.out)
        else:  # the run wrote to the default place, which depends on the model's architecture
            mode = args.mode or "head"
            reference = model_ref or (DEFAULT_SCRATCH_MODEL if mode == SCRATCH_MODE else None)
            loaded = _load_base(args, reference, mode, args.seed or 0)
            where = _bundle_path(args.out, folder, loaded.architecture, args.mode or "head")
            info = read_checkpoint_info(where)
        if info is None:
            raise ResNetGuiError(
                f"There is no interrupted run to resume at '{where}' (give its --out and --mode)."
            )
        model_ref = model_ref or info.base_source or info.base_model
        args.out = str(where)
    config = _config_from_args(args, info.config if info else None)
    config.resolved()  # settings that cannot work are refused before anything is read or written
    if info is not None:
        split = Split.from_dict(info.split, dataset.root)
        missing = split.missing_files()
        if missing:
            raise ResNetGuiError(
                f"{len(missing)} images of the interrupted run are gone, e.g. '{missing[0]}'."
            )
    else:
        exclude = report.suggested_exclude() if args.clean else {i.path for i in report.unreadable}
        split = make_split(dataset, val_fraction=args.val_fraction, seed=config.seed, exclude=exclude)
        extra = len(report.suggested_exclude()) - len(exclude)
        if extra > 0:
            print(f"  (--clean would also leave out {extra} files the check flags)", file=out_stream)
    if args.add:
        split = _with_added_photos(split, Path(args.add), out_stream)
    method = "the train/val folders" if split.method == "folders" else f"stratified, seed {split.seed}"
    print(
        f"Split ({method}): {len(split.train)} train, {len(split.val)} val"
        + (f", {len(split.test)} test" if split.test else "")
        + (f"; {len(split.excluded)} left out" if split.excluded else ""),
        file=out_stream,
    )
    if args.check:
        try:
            if loaded is None:
                loaded = _load_base(args, model_ref, config.mode, config.seed)
            _print_estimate(loaded, split, config, out_stream)
        except ResNetGuiError as error:  # the data check stands without a model…
            if config.from_scratch:
                raise  # …but a network that cannot be trained from scratch is refused, as without --check
            print(f"(No time estimate: {error})", file=out_stream)
        return 0

    if loaded is None:
        loaded = _load_base(args, model_ref, config.mode, config.seed)
    out = _bundle_path(args.out, folder, loaded.architecture, config.mode)
    outputs = [
        OutputTarget(out, "bundle"),
        OutputTarget(sidecar_path(out), "bundle-sidecar"),
        OutputTarget(checkpoint_path(out), "checkpoint"),
    ]
    inputs = [str(ref) for ref in (args.weights, args.model, loaded.source) if ref]
    if rank not in (None, 0):  # rank 0 checks and holds the outputs
        return _train_and_save(args, loaded, split, config, out, model_ref, status, out_stream)
    with claim_outputs(outputs, inputs=inputs, overwrite=args.overwrite):
        return _train_and_save(args, loaded, split, config, out, model_ref, status, out_stream)


def _torchrun_rank() -> int | None:
    """This process's rank when torchrun started it (``RANK``/``WORLD_SIZE`` set), else ``None``."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "RANK" in os.environ:
        return int(os.environ["RANK"])
    return None


def _run_events(
    args: argparse.Namespace,
    loaded: Any,
    split: Any,
    config: Any,
    out: Path,
    model_ref: str | None,
    cache: Any,
    cancelled: Callable[[], bool],
) -> Iterator[Any]:
    """The run's events: here, on ``--nproc`` spawned processes, or as this torchrun rank."""
    from resnet_gui.core.training import train

    if args.nproc > 1:
        from resnet_gui.core.training.distributed import TrainJob, train_in_processes

        job = TrainJob(
            model_ref,
            split,
            out,
            config,
            resume=args.resume,
            cache_dir=None if cache is None or cache.directory is None else str(cache.directory),
            save_on_cancel=args.save_on_cancel,
            allow_download=not args.no_download,
            source=model_ref or "",
        )
        yield from train_in_processes(job, args.nproc, cancel=cancelled)
        return
    ranks = None
    if _torchrun_rank() is not None:
        from resnet_gui.core.training.distributed import from_environment, leave_group

        ranks = from_environment(config.device)
    try:
        yield from train(
            loaded,
            split,
            out,
            config,
            resume=args.resume,
            cancel=cancelled,
            feature_cache=cache,
            save_on_cancel=args.save_on_cancel,
            source=model_ref or "",
            distributed=ranks,
        )
    finally:
        if ranks is not None:
            leave_group()


#: The largest ``--add`` table read (a list of file names: a few MB is already many thousands).
MAX_ADD_BYTES = 16 << 20


def _read_add_rows(table: Path) -> list[tuple[int, str, str]]:
    """``(row number, path, class)`` of a ``path,class`` CSV; a malformed one is one sentence."""
    import csv
    import io

    from resnet_gui.core.csvcells import unescape_csv_cell
    from resnet_gui.core.userfiles import read_user_text

    shown = printable_path(table)
    text = read_user_text(table, max_bytes=MAX_ADD_BYTES)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    while rows and not any(cell.strip() for cell in rows[0]):
        rows.pop(0)
    if not rows or [cell.strip().lower() for cell in rows[0]] != ["path", "class"]:
        raise ResNetGuiError(f"--add '{shown}' must start with the header 'path,class'.")
    found = []
    for row_number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise ResNetGuiError(
                f"Row {row_number} of --add '{shown}' is not 'path,class' ({len(row)} cells); fix or "
                "remove it."
            )
        found.append((row_number, unescape_csv_cell(row[0].strip()), unescape_csv_cell(row[1].strip())))
    return found


def _with_added_photos(split: Any, table: Path, out: TextIO) -> Any:
    """``split`` with the ``--add`` table's photos in its training part, each one checked first."""
    from resnet_gui.core.errors import ImageLoadError
    from resnet_gui.core.images import load_image

    shown = printable_path(table)
    rows = _read_add_rows(table)
    known = {
        sample.path.resolve(): (part, split.classes[sample.label])
        for part in ("train", "val", "test")
        for sample in getattr(split, part)
    }
    chosen: list[tuple[Path, str]] = []
    for row_number, name, label in rows:
        where = f"Row {row_number} of --add '{shown}'"
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = table.parent / path
        path = Path(os.path.abspath(path))
        if label not in split.classes:
            classes = ", ".join(printable(c) for c in split.classes[:20])
            raise ResNetGuiError(
                f"{where}: the class '{printable(label)}' is not one of the dataset's classes ({classes})."
            )
        try:
            load_image(path)
        except ImageLoadError as err:
            raise ResNetGuiError(f"{where}: cannot read '{printable_path(path)}': {err.reason}.") from None
        part, given = known.get(path.resolve(), ("", ""))
        if part and (part != "train" or given != label):
            raise ResNetGuiError(
                f"{where}: '{printable_path(path)}' is already a {part} photo of class '{printable(given)}' "
                "in the dataset; move it with the review of the training data instead."
            )
        if not part:
            chosen.append((path, label))
    added = split.with_training_photos(chosen)
    count = len(added.train) - len(split.train)
    print(f"Added {count} photos from {shown} to the training split.", file=out)
    return added


def _train_and_save(
    args: argparse.Namespace,
    loaded: Any,
    split: Any,
    config: Any,
    out: Path,
    model_ref: str | None,
    status: _Status,
    out_stream: TextIO,
) -> int:
    """The training run itself, into ``out`` (claimed by the caller), with its progress and table."""
    from resnet_gui.core.training import (
        EpochMetrics,
        FeatureCache,
        Progress,
        StepMetrics,
        TrainResult,
        read_checkpoint_info,
    )

    if not args.resume and read_checkpoint_info(out) is not None and _torchrun_rank() in (None, 0):
        print(
            f"Note: starting over; the checkpoint of an earlier run at {printable_path(out)} "
            "will be replaced.",
            file=sys.stderr,
        )
    cache = None
    if not args.no_disk_cache:
        from resnet_gui.core import paths

        directory = args.cache_dir or (
            paths.data_dir() / "cache" / "features" if config.mode == "head" else None
        )
        cache = FeatureCache(directory) if directory else None
    resolved = config.resolved()
    what = (
        f"Training {printable(loaded.architecture)} from scratch"
        if resolved.from_scratch
        else f"Fine-tuning {printable(loaded.name)}"
    )
    print(
        f"{what} ({resolved.mode} mode, {resolved.optimizer}, "
        f"lr {resolved.lr:g}, "
        f"batch {resolved.batch_size}, up to {resolved.epochs} epochs"
        + (f" after {resolved.probe_epochs} classifier-only epochs" if resolved.probe_epochs else "")
        + f") into {printable_path(out)}",
        file=out_stream,
        flush=True,
    )
    result: TrainResult | None = None
    table_started = False

    def say(message: str) -> None:
        status.clear()
        print(message, file=sys.stderr, flush=True)

    with _ctrl_c_cancels(say) as cancelled:
        for event in _run_events(args, loaded, split, config, out, model_ref, cache, cancelled):
            if isinstance(event, Progress) and event.phase == "prepare":
                status.show(event.message)
            elif isinstance(event, Progress):
                eta = f"  ETA {_duration(event.eta_seconds)}" if event.eta_seconds is not None else ""
                rate = f"  {event.images_per_second:.1f} img/s" if event.done else ""
                status.show(
                    f"{event.phase:<24} [{_bar(event.fraction)}] {event.done}/{event.total}{rate}{eta}",
                    force=event.done == event.total,
                )
            elif isinstance(event, StepMetrics):
                status.show(
                    f"{event.stage} epoch {event.epoch}/{event.epochs} [{_bar(event.step / event.steps)}] "
                    f"loss {event.loss:.3f} acc {_percent(event.accuracy)} lr {event.lr:.1e} "
                    f"{event.images_per_second:.0f} img/s  ETA {_duration(event.eta_seconds)}"
                )
            elif isinstance(event, EpochMetrics):
                status.clear()
                if not table_started:
                    print(
                        f"{'stage':<6} {'epoch':>7}  {'train loss':>10} {'train acc':>9}  "
                        f"{'val loss':>8} {'val acc':>8}  {'lr':>7} {'time':>7} {'img/s':>7}",
                        file=out_stream,
                    )
                    table_started = True
                val_loss = "-" if event.val_loss is None else f"{event.val_loss:.4f}"
                print(
                    f"{event.stage:<6} {f'{event.epoch}/{event.epochs}':>7}  {event.train_loss:>10.4f} "
                    f"{_percent(event.train_accuracy):>9}  {val_loss:>8} {_percent(event.val_accuracy):>8}  "
                    f"{event.lr:>7.1e} {event.seconds:>6.1f}s {event.images_per_second:>7.0f}"
                    + ("  *" if event.best else ""),
                    file=out_stream,
                    flush=True,
                )
            elif isinstance(event, TrainResult):
                result = event
    status.clear()
    assert result is not None
    return _summarise(result, out_stream)


def _print_estimate(loaded: Any, split: Any, config: Any, out: TextIO) -> None:
    """The wizard's estimate: training's pieces timed on this machine, scaled to this run."""
    from resnet_gui.core.training.estimate import describe_seconds, estimate_run, measure_costs

    samples = [s.path for s in split.train[:: max(1, len(split.train) // 4)]][:4]
    costs = measure_costs(loaded, samples, device=config.device)
    estimate = estimate_run(costs, config, len(split.train), len(split.val))
    print(
        f"Estimated on this {costs.device} for {estimate.mode} mode: one-off "
        f"{describe_seconds(estimate.setup_seconds)}, then {describe_seconds(estimate.epoch_seconds)} per "
        f"epoch; {describe_seconds(estimate.total_seconds)} for all {estimate.epochs} epochs at most.",
        file=out,
    )


def _summarise(result: Any, out: TextIO) -> int:
    if result.best_epoch is not None:
        test = (
            f", test accuracy {_percent(result.test_accuracy).strip()}"
            if result.test_accuracy is not None
            else ""
        )
        val = (
            f"val accuracy {_percent(result.val_accuracy).strip()} (loss {result.val_loss:.4f})"
            if result.val_loss is not None
            else "no validation images"
        )
        print(f"Best: {result.best_stage} epoch {result.best_epoch}: {val}{test}", file=out)
    print(
        f"Time: {_duration(result.seconds)} (computing frozen features: {_duration(result.feature_seconds)})",
        file=out,
    )
    if result.status == "stopped_early":
        print("Stopped early: the validation loss stopped improving.", file=out)
    if result.bundle is not None:
        print(
            f"Saved: {printable_path(result.bundle)} (settings and metrics: "
            f"{printable_path(result.bundle.with_suffix('.json'))})",
            file=out,
        )
        print(f"Use it: resnet-gui classify --model {printable_path(result.bundle)} PHOTO", file=out)
        from resnet_gui.core.calibration import calibration_summary

        for line in calibration_summary(result.metrics):
            print(f"Confidence: {line}", file=out)
    if result.status == "cancelled":
        if result.checkpoint is not None:
            print(
                f"Interrupted. The last finished epoch is kept in {printable_path(result.checkpoint)}; "
                "run the same command with --resume to continue.",
                file=sys.stderr,
            )
        else:
            print("Interrupted before the first epoch finished; nothing to resume.", file=sys.stderr)
        return EXIT_CANCELLED
    return 0


# --- evaluate ---------------------------------------------------------------------------------


# The files of ``evaluate --out-dir`` and their kinds of the output guard (core.outputs).
REPORT_FILES = (
    ("report.json", "report-json"),
    ("confusion_matrix.csv", "report-csv"),
    ("confusion_matrix.png", "report-png"),
    ("reliability_diagram.png", "report-reliability-png"),
    ("predictions.csv", "report-csv"),
)


def run_evaluate(args: argparse.Namespace) -> int:
    """Score a model on a folder; print the metrics and write the files of --out-dir."""
    from resnet_gui.core.download import terminal_progress
    from resnet_gui.core.models import load_model
    from resnet_gui.core.outputs import OutputTarget, check_outputs, claim_outputs
    from resnet_gui.core.training import EvaluationReport, Progress, iter_evaluate

    outputs = []
    if args.out_dir:
        out_dir = Path(args.out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise OutputError(f"--out-dir '{printable_path(out_dir)}' is a file, not a folder.")
        outputs = [OutputTarget(out_dir / name, kind, "--out-dir") for name, kind in REPORT_FILES]
    inputs = [str(ref) for ref in (args.weights, args.model) if ref]
    issues_target = (
        OutputTarget(Path(args.label_issues), "label-issues-csv", "--label-issues")
        if args.label_issues
        else None
    )
    # The table must never land on one of the photos it lists (even with --overwrite).
    photos = _folder_photos(args.folder) if issues_target is not None else []
    check_outputs(outputs, inputs=inputs, overwrite=args.overwrite)
    if issues_target is not None:
        check_outputs([issues_target], inputs=[*inputs, *photos], overwrite=args.overwrite)
    loaded = load_model(
        args.model,
        weights_file=args.weights,
        progress=terminal_progress(),
        allow_download=not args.no_download,
    )
    review_split = None
    if issues_target is not None:
        from resnet_gui.core.training.review import recorded_split

        review_split = recorded_split(loaded)  # before the evaluation: a model without one is said now
        photos += [s.path for part in ("train", "val", "test") for s in getattr(review_split, part)]
        check_outputs([issues_target], inputs=[*inputs, *photos], overwrite=args.overwrite)
    status = _Status()
    report: EvaluationReport | None = None
    for item in iter_evaluate(
        loaded,
        args.folder,
        split=args.split,
        device=args.device,
        batch_size=args.batch_size,
        top_wrong=args.top_wrong,
    ):
        if isinstance(item, Progress):
            eta = f"  ETA {_duration(item.eta_seconds)}" if item.eta_seconds is not None else ""
            status.show(f"Evaluating [{_bar(item.fraction)}] {item.done}/{item.total}{eta}")
        else:
            report = item
    status.clear()
    assert report is not None
    written: dict[str, Path] = {}
    if args.out_dir:
        with claim_outputs(
            outputs, inputs=[*inputs, *([loaded.source] if loaded.source else [])], overwrite=args.overwrite
        ):
            written = report.write(args.out_dir)
    issues_summary: list[str] = []
    if issues_target is not None:
        issues_summary = _write_label_issues(
            args, loaded, review_split, report, issues_target, [*inputs, *photos], status
        )
        written["label_issues"] = issues_target.path
    if args.json:
        print(report.to_json())
        for line in issues_summary:
            print(line, file=sys.stderr)
        return 0
    out = sys.stdout
    part = f" ({report.split} split)" if report.split else ""
    print(
        f"Model: {printable(report.model)} — {report.count} images of {printable_path(report.folder)}{part}, "
        f"{report.seconds:.1f} s",
        file=out,
    )
    print(f"Accuracy: {report.accuracy * 100:.2f} %   macro F1: {report.macro_f1:.3f}", file=out)
    columns = [printable(c) for c in report.columns]
    width = max(8, *(len(c) for c in columns))
    print(f"  {'class':<{width}}  {'precision':>9} {'recall':>7} {'F1':>6} {'images':>7}", file=out)
    for c in report.per_class:
        print(
            f"  {printable(c.name):<{width}}  {c.precision:>9.3f} {c.recall:>7.3f} {c.f1:>6.3f} "
            f"{c.support:>7}",
            file=out,
        )
    if len(columns) <= 12:
        print("Confusion matrix (rows: true class, columns: predicted):", file=out)
        print(f"  {'':<{width}}  " + " ".join(f"{c[:8]:>8}" for c in columns), file=out)
        for name, row in zip(report.classes, report.confusion.tolist(), strict=True):
            print(f"  {printable(name):<{width}}  " + " ".join(f"{v:>8}" for v in row), file=out)
    if report.most_confident_wrong:
        print("Most confidently wrong:", file=out)
        for wrong in report.most_confident_wrong:
            shown = (
                f"{wrong.confidence * 100:5.1f} % {printable(wrong.predicted_label)} "
                f"(is {printable(wrong.true_label)})"
            )
            print(f"  {shown}  {printable_path(wrong.path)}", file=out)
    if report.calibration is not None:
        _print_calibration(report.calibration, out)
    for line in issues_summary:
        print(line, file=out)
    for issue in report.unreadable:
        print(f"{printable_path(issue.path)}: cannot read: {printable(issue.reason)}", file=sys.stderr)
    if written:
        print("Wrote: " + ", ".join(printable_path(p) for p in written.values()), file=out)
    return 0


def _folder_photos(folder: str) -> list[Path]:
    """The image files of an evaluated folder (none when it cannot be scanned: evaluate says why)."""
    from resnet_gui.core.training import DatasetError, scan_dataset

    try:
        return [sample.path for sample in scan_dataset(folder).samples]
    except DatasetError:
        return []


def _write_label_issues(
    args: argparse.Namespace,
    loaded: Any,
    split: Any,
    report: Any,
    target: Any,
    inputs: list[Any],
    status: _Status,
) -> list[str]:
    """Find the label issues of the model's training data, write them and the top losses to
    ``--label-issues`` (guarded, atomically); return the lines that summarise them."""
    from resnet_gui.core import paths
    from resnet_gui.core.atomic import write_bytes_atomic
    from resnet_gui.core.csvcells import csv_bytes
    from resnet_gui.core.outputs import claim_outputs
    from resnet_gui.core.training import FeatureCache, Progress
    from resnet_gui.core.training.review import iter_label_issues, label_issues_csv, top_losses

    issues: list[Any] = []
    cache = FeatureCache(paths.data_dir() / "cache" / "features")
    for item in iter_label_issues(
        loaded, split, device=args.device, batch_size=args.batch_size, feature_cache=cache
    ):
        if isinstance(item, Progress):
            status.show(f"Reviewing labels [{_bar(item.fraction)}] {item.done}/{item.total}")
        else:
            issues = item
    status.clear()
    losses = top_losses(report)
    with claim_outputs([target], inputs=inputs, overwrite=args.overwrite):
        write_bytes_atomic(target.path, csv_bytes(label_issues_csv(issues, losses, report.split)))
    reviewed = len(split.train) + len(split.val)
    lines = [
        f"Possible label errors: {len(issues)} of the {reviewed} training and validation photos "
        f"(confident learning); top losses: {len(losses)}. Table: {printable_path(target.path)}"
    ]
    for issue in issues[:10]:
        lines.append(
            f"  {issue.split:<5} {printable(issue.given)} -> {printable(issue.suggested)} "
            f"({issue.suggested_probability * 100:.0f} %)  {printable_path(issue.path)}"
        )
    return lines


def _print_calibration(calibration: Any, out: TextIO) -> None:
    """The confidence section of ``evaluate``: plain sentences, then the reliability table."""
    print("Confidence:", file=out)
    for line in calibration.sentences():
        print(f"  {line}", file=out)
    after = calibration.reliability_after
    print("Reliability (when the model says …, it is right … of the time):", file=out)
    header = f"  {'says':>11}  {'photos':>6}  {'right':>6}"
    print(header + ("  (after scaling)" if after is not None else ""), file=out)
    rows = after if after is not None else calibration.reliability_before
    for row in rows:
        if row.count:
            span = f"{row.lower * 100:3.0f}–{row.upper * 100:3.0f} %"
            print(f"  {span:>11}  {row.count:>6}  {row.accuracy * 100:5.1f} %", file=out)


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "finetune": run_finetune,
    "evaluate": run_evaluate,
}
