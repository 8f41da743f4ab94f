"""Read, write and apply weights files a user gives us.

A ``.pth`` file is a pickle, and unpickling can run arbitrary code, so ``.pth``/``.pt``/
``.bin``/``.ckpt`` files are only ever read with ``torch.load(..., weights_only=True)``; a
file that needs more is refused with :class:`UnsafeCheckpointError`, never retried unsafely.
Our own files are written as safetensors (no code, metadata in the header).

Checkpoints come wrapped in many ways (``{'state_dict': ...}``, DataParallel's ``module.``
prefix, ...); :func:`read_weights_file` unwraps the common ones so the user does not have to.
:func:`apply_state_dict` explains a mismatch layer by layer instead of torch's wall of text.
"""

from __future__ import annotations

import json
import pickle
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import safetensors
import safetensors.torch
import torch

from resnet_gui.core.atomic import atomic_path
from resnet_gui.core.errors import UnsafeCheckpointError, WeightsError, WeightsShapeMismatchError

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
SAFETENSORS_SUFFIX = ".safetensors"

# Keys under which training scripts commonly nest the state_dict, tried in this order.
_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model")
# Prefixes added by wrappers: DataParallel/DistributedDataParallel and torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")

# Phrases of torch's weights-only unpickler that mean "this needs code execution", as opposed
# to "this is not a pickle at all" ("Unsupported operand", EOF...).
_UNSAFE_MARKERS = (
    "GLOBAL",
    "reduce for unrecognized function",
    "Can only create new object",
    "Can only build",
    "persistent_load",
    "must be imported to load",
)

_RESAVE_HINT = (
    "Load it once in a trusted Python session and re-save just the weights, e.g. "
    "`torch.save(model.state_dict(), 'weights.pth')`, or save them as .safetensors."
)

_MAX_LISTED = 10


def read_weights_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a ``.safetensors`` or torch checkpoint file into ``(state_dict, metadata)``.

    The state_dict is unwrapped from common containers and stripped of wrapper prefixes;
    non-tensor entries are dropped. Metadata comes from the safetensors header, or from the
    scalar entries next to the state_dict in a torch checkpoint.

    Raises :class:`UnsafeCheckpointError` for a pickle that would run code when loaded, and
    :class:`WeightsError` for a missing, unreadable, corrupt or non-weights file.
    """
    from resnet_gui.core.userfiles import REASON_DIRECTORY, UserFileError, check_user_file

    path = Path(path)
    if not path.exists():
        raise WeightsError(f"Weights file '{path}' does not exist.")
    try:
        check_user_file(path)  # a FIFO would block the reader; a folder or a device is no weights file
    except UserFileError as error:
        if error.reason == REASON_DIRECTORY:
            raise WeightsError(f"'{path}' is a folder, not a weights file.") from None
        raise WeightsError(f"'{path}' cannot be read as weights: {error.reason}.") from None
    suffix = path.suffix.lower()
    if suffix == SAFETENSORS_SUFFIX or (suffix not in TORCH_SUFFIXES and _looks_like_safetensors(path)):
        return _read_safetensors(path)
    if suffix in TORCH_SUFFIXES or zipfile.is_zipfile(path) or _looks_like_pickle(path):
        return _read_torch(path)
    if suffix == ".json":
        bundle = bundle_of_sidecar(path)
        if bundle is not None:
            return _read_safetensors(bundle)
        raise WeightsError(_json_reason(path))
    if suffix in (".h5", ".keras"):
        raise WeightsError(
            f"'{path.name}' looks like Keras weights, which cannot be used directly: "
            "import them with `resnet-gui weights import-keras`."
        )
    raise WeightsError(
        f"'{path}' is not a weights file: expected a .safetensors file or a PyTorch checkpoint "
        f"({', '.join(TORCH_SUFFIXES)})."
    )


SIDECAR_FORMAT = "resnet-gui-weights/1"


def _sidecar_format(path: Path) -> str | None:
    """The ``format`` a JSON file declares (a bundle's sidecar says ``resnet-gui-weights/1``), if any."""
    try:
        if path.stat().st_size > 50 * 1024 * 1024:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    value = data.get("format") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def bundle_of_sidecar(path: str | Path) -> Path | None:
    """The bundle a ``.json`` sidecar describes (``ants.json`` -> ``ants.safetensors``), if beside it.

    ``None`` when ``path`` is no sidecar or its bundle is missing (:func:`_json_reason` says which).
    """
    path = Path(path)
    if path.suffix.lower() != ".json" or _sidecar_format(path) != SIDECAR_FORMAT:
        return None
    bundle = path.with_suffix(".safetensors")
    return bundle if bundle.is_file() else None


def _json_reason(path: Path) -> str:
    """Why a ``.json`` file cannot be used as a model, in one sentence."""
    if _sidecar_format(path) == SIDECAR_FORMAT:
        return (
            f"'{path.name}' only describes a fine-tuned model; its weights, "
            f"'{path.with_suffix('.safetensors').name}', are not in {path.parent}: "
            "copy them there, or give the .safetensors file itself."
        )
    if path.name == "model.json":
        return (
            f"'{path}' looks like the Keras ResNet-50's model.json, which cannot be used directly: "
            "import it with `resnet-gui weights import-keras` (in the app: Model → Import Keras ResNet-50…)."
        )
    return (
        f"'{path.name}' is a JSON file, not a model: give the .safetensors file of a fine-tuned model "
        "(the .json beside it works too), or a PyTorch weights file."
    )


def write_weights_file(
    path: str | Path, state_dict: Mapping[str, torch.Tensor], metadata: dict[str, str]
) -> None:
    """Save ``state_dict`` as safetensors with ``metadata`` in the header, atomically.

    Tensors are moved to the CPU and made contiguous; tensors sharing memory (which
    safetensors refuses) are copied.
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    seen_storages: set[int] = set()
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            continue
        tensor = value.detach().to("cpu").contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen_storages and tensor.numel() > 0:
            tensor = tensor.clone()
        seen_storages.add(tensor.untyped_storage().data_ptr())
        tensors[str(key)] = tensor
    header = {str(k): str(v) for k, v in metadata.items()}
    try:
        with atomic_path(path) as tmp:
            safetensors.torch.save_file(tensors, str(tmp), metadata=header)
    except OSError as err:
        raise WeightsError(f"Cannot write weights to '{path}': {err.strerror or err}.") from err


def apply_state_dict(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str = ""
) -> None:
    """Load ``state_dict`` into ``model`` strictly, explaining any mismatch first.

    ``num_batches_tracked`` buffers (a training counter) may be missing or extra. Raises
    :class:`WeightsShapeMismatchError` naming each layer whose shape differs (expected vs
    found) and listing missing and unexpected keys; ``source`` (a file name) goes in the message.
    """
    expected = model.state_dict()
    given = {k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor)}

    def counted(key: str) -> bool:
        return not key.endswith("num_batches_tracked")

    missing = [k for k in expected if k not in given and counted(k)]
    unexpected = [k for k in given if k not in expected and counted(k)]
    mismatched = [k for k in expected if k in given and tuple(given[k].shape) != tuple(expected[k].shape)]

    if missing or unexpected or mismatched:
        raise _mismatch_error(model, expected, given, missing, unexpected, mismatched, source)

    to_load = {k: v for k, v in given.items() if k in expected}
    for key in expected:
        if key not in to_load:  # only num_batches_tracked can be absent here: keep the model's own
            to_load[key] = expected[key]
    try:
        model.load_state_dict(to_load, strict=True)
    except RuntimeError as err:  # e.g. a dtype that cannot be copied: report it without the traceback
        raise WeightsError(f"The weights{_of(source)} could not be applied to the model: {err}") from err


def _mismatch_error(
    model: torch.nn.Module,
    expected: Mapping[str, torch.Tensor],
    given: Mapping[str, torch.Tensor],
    missing: list[str],
    unexpected: list[str],
    mismatched: list[str],
    source: str,
) -> WeightsShapeMismatchError:
    classifier = _classifier_keys(model)
    lines = [f"The weights{_of(source)} do not fit this model."]
    for key in mismatched[:_MAX_LISTED]:
        want, have = tuple(expected[key].shape), tuple(given[key].shape)
        line = f"  {key}: the model expects {_shape(want)}, the file has {_shape(have)}"
        if key in classifier and want[1:] == have[1:]:
            line += " — was it trained for another number of classes?"
        lines.append(line)
    if len(mismatched) > _MAX_LISTED:
        lines.append(f"  ... and {len(mismatched) - _MAX_LISTED} more layers with other shapes.")
    if missing:
        lines.append(f"Missing from the file ({len(missing)}): {_listing(missing)}.")
    if unexpected:
        lines.append(f"In the file but not in the model ({len(unexpected)}): {_listing(unexpected)}.")
    # The likely cause goes right after the first line, before the (possibly long) details.
    if (missing or unexpected) and not any(k in given for k in expected):
        lines.insert(
            1,
            "No layer name matches: the file is probably for another architecture or framework "
            "(Keras weights must first be imported with `resnet-gui weights import-keras`).",
        )
    elif missing or unexpected or any(k not in classifier for k in mismatched):
        lines.insert(
            1, "The file is probably for another architecture (for example resnet18 weights on a resnet50)."
        )
    error = WeightsShapeMismatchError("\n".join(lines))
    error.mismatched = {k: (tuple(expected[k].shape), tuple(given[k].shape)) for k in mismatched}  # type: ignore[attr-defined]
    error.missing = missing  # type: ignore[attr-defined]
    error.unexpected = unexpected  # type: ignore[attr-defined]
    return error


def _classifier_keys(model: torch.nn.Module) -> set[str]:
    """The parameter names of the model's last Linear layer (its classifier, e.g. ``fc``)."""
    linears = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    if not linears:
        return set()
    prefix = f"{linears[-1]}." if linears[-1] else ""
    return {f"{prefix}weight", f"{prefix}bias"}


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f", and {len(keys) - _MAX_LISTED} more" if len(keys) > _MAX_LISTED else "")


def _of(source: str) -> str:
    return f" in '{source}'" if source else ""


# --- reading -----------------------------------------------------------------------------------


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
    except (safetensors.SafetensorError, OSError, ValueError, RuntimeError, TypeError) as err:
        raise WeightsError(
            f"'{path}' is not a valid safetensors file (it may be truncated or corrupt): {err}."
        ) from err
    return _finish(path, tensors), {str(k): str(v) for k, v in metadata.items()}


def _read_torch(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols and legacy storages
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if _is_unsafe_refusal(str(err), path):
            raise UnsafeCheckpointError(
                f"'{path.name}' was refused for safety: it contains Python objects, not just tensors, "
                f"that would run code when loaded ({_refused_what(str(err))}). {_RESAVE_HINT}"
            ) from None
        raise _not_weights(path) from None
    except (EOFError, RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as err:
        raise _not_weights(path, err) from None
    except OSError as err:
        raise WeightsError(f"Cannot read '{path}': {err.strerror or err}.") from None
    state_dict, metadata = _unwrap(path, obj)
    return _finish(path, state_dict), metadata


def _unwrap(path: Path, obj: object) -> tuple[Mapping[object, object], dict[str, str]]:
    """Find the state_dict inside a loaded checkpoint; scalars next to it become metadata."""
    if not isinstance(obj, Mapping):
        raise WeightsError(
            f"'{path.name}' holds a {type(obj).__name__}, not a state_dict (a mapping from layer names "
            f"to tensors). {_RESAVE_HINT}"
        )
    for key in _CONTAINER_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping):
            metadata = _scalars(obj)
            extra = obj.get("metadata")
            if isinstance(extra, Mapping):
                metadata.update(_scalars(extra))
            return inner, metadata
    return obj, {}


def _scalars(mapping: Mapping[object, object]) -> dict[str, str]:
    return {
        str(k): str(v)
        for k, v in mapping.items()
        if isinstance(k, str) and isinstance(v, str | int | float | bool)
    }


def _finish(path: Path, raw: Mapping[object, object]) -> dict[str, torch.Tensor]:
    """Keep tensor entries and strip wrapper prefixes (``module.`` and, if on every key, ``model.``)."""
    tensors = {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(f"'{path.name}' contains no tensors, so it holds no weights.")
    for prefix in _WRAPPER_PREFIXES:
        tensors = {k.removeprefix(prefix) if k.startswith(prefix) else k: v for k, v in tensors.items()}
    if all(k.startswith("model.") for k in tensors):
        tensors = {k.removeprefix("model."): v for k, v in tensors.items()}
    return tensors


def _is_unsafe_refusal(message: str, path: Path) -> bool:
    """Whether torch's weights-only unpickler refused code execution (not just garbage bytes)."""
    if any(marker in message for marker in _UNSAFE_MARKERS):
        return True
    # An unsupported opcode inside a genuine torch archive or pickle is a refusal too.
    return "Unsupported operand" in message and (zipfile.is_zipfile(path) or _looks_like_pickle(path))


def _refused_what(message: str) -> str:
    for line in message.splitlines():
        line = line.strip()
        if "GLOBAL" in line:
            name = line.split("GLOBAL", 1)[1].split()[0].rstrip(".")
            return f"it refers to {name}"
    return "it uses pickle instructions that are not plain data"


def _not_weights(path: Path, err: BaseException | None = None) -> WeightsError:
    why = (
        "it ends too early (an interrupted download or copy?)"
        if isinstance(err, EOFError)
        else ("it is corrupt, truncated or another kind of file")
    )
    return WeightsError(f"'{path}' is not a readable PyTorch weights file: {why}.")


def _looks_like_pickle(path: Path) -> bool:
    """Pickle protocol 2+ starts with PROTO (0x80) and the protocol number."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _looks_like_safetensors(path: Path) -> bool:
    """A safetensors file starts with the little-endian length of its JSON header, then ``{``."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
        size = path.stat().st_size
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < size
