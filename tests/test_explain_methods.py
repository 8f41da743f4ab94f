"""Explanation methods (explain/base.py, methods.py, targets.py).

Plumbing is checked on the tiny random ResNet-18 for every method of the registry (shape, dtype,
range, hooks, eval mode, requires_grad flags, determinism, top-k, cancellation, memory); the maths
against Captum's reference implementations (Grad-CAM, guided Grad-CAM, saliency, occlusion) and
an independent Grad-CAM++ formula; the real ImageNet ResNet-50 where results must mean something.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_CATEGORIES
from PIL import Image

from resnet_gui.core.engine import Classifier
from resnet_gui.core.errors import ResNetGuiError
from resnet_gui.core.explain import (
    METHODS,
    AmbiguousTargetError,
    Explanation,
    ExplanationCancelled,
    ExplanationError,
    InvalidParameterError,
    UnknownMethodError,
    UnknownTargetError,
    explain,
    get_method,
    parse_targets,
    resolve_target,
)
from resnet_gui.core.models import LoadedModel, get_model_spec, imagenet_categories
from resnet_gui.core.preprocessing import Preprocessing

SAMPLES = Path(__file__).resolve().parent.parent / "assets" / "samples"

# Small settings so the slow methods stay quick on the tiny model.
QUICK = {
    "integrated_gradients": {"n_steps": 6, "internal_batch_size": 4},
    "smoothgrad": {"nt_samples": 6, "internal_batch_size": 4},
    "occlusion": {"window": 16, "stride": 8, "internal_batch_size": 16},
}
SLOW = [key for key, info in METHODS.items() if info.cost == "slow"]
FAST = [key for key, info in METHODS.items() if info.cost != "slow"]  # one or two passes
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def quick(method: str) -> dict:
    return QUICK.get(method, {})


def assert_no_hooks(model: torch.nn.Module) -> None:
    for name, module in model.named_modules():
        for attribute in HOOK_DICTS:
            assert not getattr(module, attribute), f"hook left in {name or 'model'}.{attribute}"
    from torch.nn.modules import module as module_module

    for attribute in ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks"):
        assert not getattr(module_module, attribute, {}), f"global hook left: {attribute}"


def requires_grad_flags(model: torch.nn.Module) -> dict[str, bool]:
    return {name: parameter.requires_grad for name, parameter in model.named_parameters()}


@pytest.fixture()
def classifier(tiny_model) -> Classifier:
    """The tiny model with a mix of frozen and trainable parameters (as during fine-tuning)."""
    for name, parameter in tiny_model.model.named_parameters():
        parameter.requires_grad_(not name.startswith(("conv1", "bn1", "layer1", "layer3")))
    return Classifier(tiny_model, device="cpu")


@pytest.fixture()
def batch(tiny_model, sample_images: list[Path]) -> np.ndarray:
    return tiny_model.preprocessing.prepare_batch([Image.open(sample_images[0]).convert("RGB")])


def bottleneck_classifier(channels_last: bool = True) -> Classifier:
    """A random ResNet-50 at 64 px: Bottleneck blocks, whose one ``relu`` module runs 3 times."""
    torch.manual_seed(1)
    model = get_model_spec("resnet50").build(num_classes=5).eval()
    loaded = LoadedModel(
        model=model,
        name="bottleneck",
        architecture="resnet50",
        preprocessing=Preprocessing(resize_size=72, crop_size=64),
        categories=tuple("abcde"),
        weights_description="random",
    )
    return Classifier(loaded, device="cpu", channels_last=channels_last)


# -- the registry ------------------------------------------------------------------------------


def test_registry_describes_every_method() -> None:
    assert set(METHODS) == {
        "gradcam",
        "gradcam++",
        "saliency",
        "integrated_gradients",
        "smoothgrad",
        "guided_gradcam",
        "occlusion",
    }
    for key, info in METHODS.items():
        assert info.key == key == info.cls.key
        assert info.display_name and info.description and "\n" not in info.description
        assert info.cost in ("fast", "medium", "slow")
        assert "arxiv.org" in (info.cls.__doc__ or ""), f"{key}: no citation in the docstring"
        assert info.citation
        for parameter in info.parameters:
            assert parameter.coerce(parameter.default) == parameter.default
            assert parameter.help
        assert get_method(key).params == info.defaults
    names = {key: {p.name for p in info.parameters} for key, info in METHODS.items()}
    assert {"n_steps", "internal_batch_size"} <= names["integrated_gradients"]
    assert {"nt_samples", "stdev"} <= names["smoothgrad"]
    assert {"window", "stride"} <= names["occlusion"]
    assert {key for key, info in METHODS.items() if info.cost == "slow"} == {
        "integrated_gradients",
        "smoothgrad",
        "occlusion",
    }


def test_get_method_validates_names_and_parameters() -> None:
    assert get_method("Grad-CAM").key == "gradcam"
    assert get_method("GradCAM++").key == "gradcam++"
    assert get_method("integrated-gradients", n_steps="12").params["n_steps"] == 12  # CLI strings
    with pytest.raises(UnknownMethodError, match="Known methods: gradcam"):
        get_method("lime")
    with pytest.raises(InvalidParameterError, match="no parameter 'steps'"):
        get_method("integrated_gradients", steps=3)
    with pytest.raises(InvalidParameterError, match="at least"):
        get_method("smoothgrad", nt_samples=0)
    with pytest.raises(InvalidParameterError, match="integer"):
        get_method("occlusion", window=2.5)
    with pytest.raises(InvalidParameterError, match="one of"):
        get_method("occlusion", baseline="white")
    with pytest.raises(InvalidParameterError):
        get_method("gradcam", n_steps=3)
    assert issubclass(InvalidParameterError, ResNetGuiError)


# -- plumbing on every method ------------------------------------------------------------------


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_returns_clean_maps_and_leaves_the_model_as_it_was(
    classifier: Classifier, batch: np.ndarray, method: str
) -> None:
    model = classifier.model
    flags = requires_grad_flags(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. Captum's batching warnings
        (result,) = explain(classifier, batch, method=method, **quick(method))
    assert isinstance(result, Explanation)
    size = classifier.preprocessing.crop_size
    assert result.heatmap.shape == (size, size)
    assert result.heatmap.dtype == np.float32
    assert np.isfinite(result.heatmap).all()
    assert result.heatmap.min() >= 0
    assert result.heatmap.max() > 0
    assert result.method == method
    expected = classifier.probabilities(batch)[0]
    assert result.target_index == int(expected.argmax())
    assert result.target_label == TINY_CATEGORIES[result.target_index]
    assert result.probability == pytest.approx(float(expected.max()), abs=1e-5)
    assert result.seconds > 0
    # The model is untouched: no hooks, eval mode, same flags, same weights, grad mode kept.
    assert_no_hooks(model)
    assert not model.training
    assert requires_grad_flags(model) == flags
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert torch.is_grad_enabled()
    if METHODS[method].deterministic:
        (again,) = explain(classifier, batch, method=method, **quick(method))
        np.testing.assert_allclose(again.heatmap, result.heatmap, rtol=1e-6, atol=1e-7 * result.heatmap.max())


@pytest.mark.parametrize("method", list(METHODS))
def test_several_classes_at_once_equal_separate_calls(
    classifier: Classifier, batch: np.ndarray, method: str
) -> None:
    together = explain(classifier, batch, targets=[2, 0, 1], method=method, **quick(method))
    assert [e.target_index for e in together] == [2, 0, 1]
    for explanation in together:
        (alone,) = explain(
            classifier, batch, targets=explanation.target_index, method=method, **quick(method)
        )
        scale = max(float(alone.heatmap.max()), 1e-12)
        np.testing.assert_allclose(explanation.heatmap, alone.heatmap, rtol=1e-4, atol=1e-5 * scale)
        assert explanation.probability == pytest.approx(alone.probability, abs=1e-6)
    assert_no_hooks(classifier.model)


def test_top_k_gives_the_most_probable_classes_in_order(classifier: Classifier, batch: np.ndarray) -> None:
    probabilities = classifier.probabilities(batch)[0]
    results = explain(classifier, batch, top_k=3, method="gradcam")
    assert [r.target_index for r in results] == list(np.argsort(-probabilities, kind="stable"))
    assert [r.probability for r in results] == sorted((r.probability for r in results), reverse=True)
    assert len(explain(classifier, batch, top_k=99, method="gradcam")) == len(TINY_CATEGORIES)
    with pytest.raises(InvalidParameterError):
        explain(classifier, batch, top_k=0)


def test_images_arrays_and_batches_are_all_accepted(
    classifier: Classifier, sample_images: list[Path]
) -> None:
    images = [Image.open(path).convert("RGB") for path in sample_images[:2]]
    prepared = classifier.preprocessing.prepare_batch(images)
    from_image = explain(classifier, images[1], targets=1)[0].heatmap
    from_chw = explain(classifier, prepared[1], targets=1)[0].heatmap
    both = explain(classifier, images, targets=[1, 2])
    assert [(e.image_index, e.target_index) for e in both] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    np.testing.assert_allclose(from_image, from_chw, rtol=1e-6)
    np.testing.assert_allclose(both[2].heatmap, from_image, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        explain(classifier, prepared, targets=[1, 2])[2].heatmap, from_image, rtol=1e-5
    )
    with pytest.raises(ExplanationError, match=r"\(N, 3, H, W\)"):
        explain(classifier, np.zeros((1, 4, 64, 64), np.float32))
    with pytest.raises(ExplanationError, match="float32"):
        explain(classifier, np.zeros((1, 3, 64, 64), np.uint8))


def test_bad_targets_fail_before_any_work(classifier: Classifier, batch: np.ndarray) -> None:
    calls = []
    handle = classifier.model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(UnknownTargetError, match="out of range"):
            explain(classifier, batch, targets=3)
        with pytest.raises(UnknownTargetError, match="Did you mean"):
            explain(classifier, batch, targets=["bee", "beee"])
    finally:
        handle.remove()
    assert calls == []
    (bee,) = explain(classifier, batch, targets="BEE")
    assert (bee.target_index, bee.target_label) == (1, "bee")


def test_works_without_trainable_parameters_channels_last_or_not_and_inside_inference_mode(
    tiny_model, batch: np.ndarray
) -> None:
    for parameter in tiny_model.model.parameters():
        parameter.requires_grad_(False)
    for channels_last in (True, False):
        classifier = Classifier(tiny_model, device="cpu", channels_last=channels_last)
        for method in ("gradcam", "saliency", "guided_gradcam", "integrated_gradients"):
            with torch.inference_mode():  # e.g. a GUI worker that classifies too
                (result,) = explain(classifier, batch, method=method, **quick(method))
            assert result.heatmap.max() > 0
            assert not any(p.requires_grad for p in tiny_model.model.parameters())
            assert_no_hooks(classifier.model)


def test_a_model_borrowed_in_train_mode_is_explained_in_eval_mode_and_given_back(
    classifier: Classifier, batch: np.ndarray
) -> None:
    (reference,) = explain(classifier, batch, targets=0, method="saliency")
    classifier.model.train()
    try:
        (result,) = explain(classifier, batch, targets=0, method="saliency")
        assert classifier.model.training
    finally:
        classifier.model.eval()
    np.testing.assert_allclose(result.heatmap, reference.heatmap, rtol=1e-6)


@pytest.mark.parametrize("method", ["gradcam", "guided_gradcam", "saliency"])
def test_an_error_in_the_middle_of_the_forward_pass_releases_everything(
    classifier: Classifier, batch: np.ndarray, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(classifier.model.fc, "forward", broken)
    flags = requires_grad_flags(classifier.model)
    with pytest.raises(RuntimeError, match="boom"):
        explain(classifier, batch, method=method)
    assert_no_hooks(classifier.model)
    assert torch.is_grad_enabled()
    assert requires_grad_flags(classifier.model) == flags
    monkeypatch.undo()
    assert explain(classifier, batch, method=method)[0].heatmap.max() > 0


def test_a_missing_gradcam_layer_is_a_clear_error_for_cam_methods_only(tiny_model, batch: np.ndarray) -> None:
    tiny_model.gradcam_layer = "layer9"
    classifier = Classifier(tiny_model, device="cpu")
    for method in ("gradcam", "guided_gradcam"):
        with pytest.raises(ExplanationError, match="no layer 'layer9'"):
            explain(classifier, batch, method=method)
    assert explain(classifier, batch, method="saliency")[0].heatmap.max() > 0
    assert_no_hooks(classifier.model)


def test_the_model_lock_is_held_while_explaining(classifier: Classifier, batch: np.ndarray) -> None:
    done = threading.Event()
    worker = threading.Thread(target=lambda: (explain(classifier, batch, method="saliency"), done.set()))
    with classifier.lock:
        worker.start()
        time.sleep(0.3)
        assert not done.is_set()
    worker.join(timeout=60)
    assert done.is_set()


# -- progress and cancellation -----------------------------------------------------------------


@pytest.mark.parametrize("method", list(METHODS))
def test_progress_rises_to_one(classifier: Classifier, batch: np.ndarray, method: str) -> None:
    seen: list[float] = []
    explain(classifier, batch, top_k=2, method=method, progress=seen.append, **quick(method))
    assert seen == sorted(seen)
    assert seen[0] >= 0 and seen[-1] == 1.0
    if METHODS[method].cost == "slow":
        assert len(seen) >= 4  # reported between internal batches, not only at the ends


@pytest.mark.parametrize("method", [*SLOW, "guided_gradcam"])
def test_cancelling_raises_a_typed_error_and_releases_everything(
    classifier: Classifier, batch: np.ndarray, method: str
) -> None:
    polls = []

    def cancel() -> bool:
        polls.append(1)
        return len(polls) > 2  # let some internal batches run first

    with pytest.raises(ExplanationCancelled) as caught:
        explain(classifier, batch, top_k=2, method=method, cancel=cancel, **quick(method))
    assert isinstance(caught.value, ResNetGuiError)
    assert len(polls) == 3
    assert_no_hooks(classifier.model)
    assert torch.is_grad_enabled()
    assert explain(classifier, batch, method=method, cancel=lambda: False, **quick(method))


def test_smoothgrad_is_seeded_and_leaves_the_global_rng_alone(
    classifier: Classifier, batch: np.ndarray
) -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = explain(classifier, batch, method="smoothgrad", **QUICK["smoothgrad"])[0].heatmap
    assert torch.equal(torch.rand(3), expected_next)
    other_seed = explain(classifier, batch, method="smoothgrad", seed=7, **QUICK["smoothgrad"])[0].heatmap
    assert not np.allclose(first, other_seed)


# -- memory ------------------------------------------------------------------------------------


def _rss_bytes() -> int | None:
    try:
        import psutil  # type: ignore[import-not-found]

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        pass
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _live_tensors() -> int:
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isinstance() on some lazy torch modules warns
        return sum(1 for obj in gc.get_objects() if isinstance(obj, torch.Tensor))


@pytest.mark.slow
def test_no_memory_growth_over_200_explanations(classifier: Classifier, batch: np.ndarray) -> None:
    methods = ["gradcam", "saliency", "guided_gradcam", "gradcam++"]

    def run(count: int) -> None:
        for index in range(count):
            explain(classifier, batch, top_k=2, method=methods[index % len(methods)])

    run(20)
    tensors, rss = _live_tensors(), _rss_bytes()
    run(200)
    assert _live_tensors() <= tensors
    if rss is None:
        pytest.skip("no way to read this process's resident memory here")
    grown = _rss_bytes() - rss  # type: ignore[operator]
    assert grown < 24 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 200 explanations"


# -- the maths against references --------------------------------------------------------------


def captum_gradcam(classifier: Classifier, batch: np.ndarray, target: int) -> np.ndarray:
    """Captum's LayerGradCam, used naively (its own forward and backward), ReLU, bilinear upsampling."""
    from captum.attr import LayerAttribution, LayerGradCam

    model = classifier.model
    layer = model.get_submodule(classifier.loaded.gradcam_layer)
    inputs = classifier.to_tensor(batch).requires_grad_(True)
    attribution = LayerGradCam(model, layer).attribute(inputs, target=target, relu_attributions=True)
    upsampled = LayerAttribution.interpolate(attribution, tuple(batch.shape[2:]), interpolate_mode="bilinear")
    return upsampled[0, 0].detach().numpy()


@pytest.mark.parametrize("channels_last", [True, False])
def test_fast_gradcam_equals_captum_layer_gradcam(tiny_model, batch: np.ndarray, channels_last: bool) -> None:
    classifier = Classifier(tiny_model, device="cpu", channels_last=channels_last)
    for result in explain(classifier, batch, top_k=3, method="gradcam"):
        reference = captum_gradcam(classifier, batch, result.target_index)
        np.testing.assert_allclose(
            result.heatmap, reference, rtol=1e-5, atol=1e-5 * max(reference.max(), 1e-6)
        )
    assert_no_hooks(classifier.model)


def test_gradcam_plus_plus_follows_the_paper_formula(classifier: Classifier, batch: np.ndarray) -> None:
    """An independent float64 numpy implementation from Captum's layer activations and gradients."""
    from captum._utils.gradient import compute_layer_gradients_and_eval

    inputs = classifier.to_tensor(batch).requires_grad_(True)
    for result in explain(classifier, batch, top_k=2, method="gradcam++"):
        (gradients,), (activations,) = compute_layer_gradients_and_eval(
            classifier.model, classifier.model.layer4, (inputs,), result.target_index
        )
        g = gradients.detach().double().numpy()[0]
        a = activations.detach().double().numpy()[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = g**2 / (2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3)
        alpha = np.where(g > 0, alpha, 0.0)
        weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
        cam = np.maximum((weights[:, None, None] * a).sum(axis=0), 0)
        size = result.heatmap.shape
        expected = F.interpolate(torch.from_numpy(cam)[None, None], size=size, mode="bilinear")[0, 0].numpy()
        np.testing.assert_allclose(result.heatmap, expected, rtol=1e-4, atol=1e-5 * expected.max())
        assert expected.max() > 0


def test_saliency_equals_captum_saliency(classifier: Classifier, batch: np.ndarray) -> None:
    from captum.attr import Saliency

    for result in explain(classifier, batch, top_k=3, method="saliency"):
        inputs = classifier.to_tensor(batch).requires_grad_(True)
        reference = Saliency(classifier.model).attribute(inputs, target=result.target_index, abs=True)
        np.testing.assert_allclose(result.heatmap, reference.amax(dim=1)[0].numpy(), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("model", ["basic-blocks", "bottlenecks"])
def test_guided_gradcam_equals_captum_with_in_place_and_reused_relus(tiny_model, batch, model: str) -> None:
    """torchvision's ReLUs are in place and each block calls its one ``relu`` 2 (BasicBlock) or 3
    (Bottleneck) times; our guided backprop must give Captum's GuidedGradCam (bilinear) anyway."""
    from captum.attr import GuidedGradCam

    classifier = Classifier(tiny_model, device="cpu") if model == "basic-blocks" else bottleneck_classifier()
    for result in explain(classifier, batch, top_k=2, method="guided_gradcam"):
        inputs = classifier.to_tensor(batch).requires_grad_(True)
        layer = classifier.model.get_submodule("layer4")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Setting backward hooks on ReLU activations"
            reference = GuidedGradCam(classifier.model, layer).attribute(
                inputs, target=result.target_index, interpolate_mode="bilinear"
            )
        expected = reference.abs().amax(dim=1)[0].detach().numpy()
        np.testing.assert_allclose(result.heatmap, expected, rtol=1e-4, atol=1e-5 * max(expected.max(), 1e-9))
    assert_no_hooks(classifier.model)


def test_occlusion_equals_captum_occlusion(classifier: Classifier, batch: np.ndarray) -> None:
    from captum.attr import Occlusion

    results = explain(classifier, batch, targets=[0, 2], method="occlusion", window=16, stride=8)
    inputs = classifier.to_tensor(batch)
    for result in results:
        with torch.no_grad():
            reference = Occlusion(classifier.model).attribute(
                inputs, sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8), target=result.target_index
            )
        expected = reference.mean(dim=1)[0].clamp_min(0).numpy()
        np.testing.assert_allclose(result.heatmap, expected, rtol=1e-4, atol=1e-5 * expected.max())


def test_integrated_gradients_equal_captum_from_a_black_image(
    classifier: Classifier, batch: np.ndarray
) -> None:
    """The default baseline is black pixels in the model's normalised space, (0 - mean) / std."""
    from captum.attr import IntegratedGradients

    inputs = classifier.to_tensor(batch)
    mean = torch.tensor(classifier.preprocessing.mean).view(1, 3, 1, 1)
    std = torch.tensor(classifier.preprocessing.std).view(1, 3, 1, 1)
    black = ((0 - mean) / std).expand_as(inputs)
    (ours,) = explain(classifier, batch, targets=1, method="integrated_gradients", n_steps=8)
    signed = IntegratedGradients(classifier.model).attribute(inputs, baselines=black, target=1, n_steps=8)
    expected = signed.abs().sum(dim=1)[0].detach().numpy()
    np.testing.assert_allclose(ours.heatmap, expected, rtol=1e-4, atol=1e-5 * expected.max())


# -- targets -----------------------------------------------------------------------------------


def test_target_names_indices_and_their_errors() -> None:
    categories = imagenet_categories()
    assert resolve_target("espresso", categories) == 967  # exact, though "espresso maker" contains it
    assert categories[resolve_target("granny", categories)] == "Granny Smith"  # unique substring
    assert categories[resolve_target("GOLDEN_RETRIEVER", categories)] == "golden retriever"
    assert resolve_target("285", categories) == 285
    assert resolve_target(np.int64(3), categories) == 3
    with pytest.raises(AmbiguousTargetError) as caught:
        resolve_target("cat", categories)
    names = {name for _, name in caught.value.candidates}
    assert {"tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"} <= names
    assert "tiger cat (282)" in str(caught.value)
    with pytest.raises(AmbiguousTargetError, match=r"espresso maker \(550\), espresso \(967\)"):
        resolve_target("espres", categories)
    # Two ImageNet classes differ only by case: the exact name decides, otherwise it is ambiguous.
    assert (resolve_target("Cardigan", categories), resolve_target("cardigan", categories)) == (264, 474)
    with pytest.raises(AmbiguousTargetError) as caught:
        resolve_target("CARDIGAN", categories)
    assert [index for index, _ in caught.value.candidates] == [264, 474]
    with pytest.raises(UnknownTargetError, match=r"0 to 999"):
        resolve_target(1000, categories)
    with pytest.raises(UnknownTargetError, match="out of range"):
        resolve_target(-1, categories)
    with pytest.raises(UnknownTargetError, match=r"zebra \(340\)"):
        resolve_target("zebbra", categories)
    for bad in (True, "", 2.0, None):
        with pytest.raises(UnknownTargetError):
            resolve_target(bad, categories)  # type: ignore[arg-type]
    assert parse_targets(None, categories) is None
    assert parse_targets(["espresso", 967, "tabby"], categories) == [967, 281]
    with pytest.raises(UnknownTargetError, match="empty"):
        parse_targets([], categories)
    for error in (AmbiguousTargetError, UnknownTargetError):
        assert issubclass(error, ResNetGuiError)


# -- the real ImageNet ResNet-50 ---------------------------------------------------------------

COFFEE = 967


@pytest.fixture(scope="module")
def real_classifier(real_resnet50) -> Classifier:
    return Classifier(real_resnet50, device="cpu")


@pytest.fixture(scope="module")
def coffee(real_resnet50) -> np.ndarray:
    return real_resnet50.preprocessing.prepare_batch([Image.open(SAMPLES / "coffee.jpg").convert("RGB")])


@pytest.mark.real_model
def test_real_fast_gradcam_equals_captum_layer_gradcam(
    real_classifier: Classifier, coffee: np.ndarray
) -> None:
    results = explain(real_classifier, coffee, top_k=2, method="gradcam")
    assert results[0].target_label == "espresso"
    for result in results:
        reference = captum_gradcam(real_classifier, coffee, result.target_index)
        assert reference.max() > 0
        np.testing.assert_allclose(result.heatmap, reference, rtol=1e-5, atol=1e-5 * reference.max())
    assert_no_hooks(real_classifier.model)


@pytest.mark.real_model
@pytest.mark.parametrize("method", FAST)
def test_real_top_3_at_once_equals_3_separate_calls(
    real_classifier: Classifier, coffee: np.ndarray, method
) -> None:
    together = explain(real_classifier, coffee, top_k=3, method=method)
    assert together[0].target_index == COFFEE
    for result in together:
        (alone,) = explain(real_classifier, coffee, targets=result.target_index, method=method)
        scale = max(float(alone.heatmap.max()), 1e-12)
        np.testing.assert_allclose(result.heatmap, alone.heatmap, rtol=1e-4, atol=1e-5 * scale)
        assert result.heatmap.shape == (224, 224)
    assert_no_hooks(real_classifier.model)
    assert not real_classifier.model.training


@pytest.mark.real_model
def test_real_targets_by_name(real_classifier: Classifier, coffee: np.ndarray) -> None:
    (cup,) = explain(real_classifier, coffee, targets="Espresso", method="gradcam")
    assert (cup.target_index, cup.target_label) == (COFFEE, "espresso")
    assert cup.probability > 0.5
    with pytest.raises(AmbiguousTargetError, match="tiger cat"):
        explain(real_classifier, coffee, targets="cat")
    # The map of the top class is on the cup, in the middle of the crop, not on the border.
    heatmap = cup.heatmap
    centre = heatmap[56:168, 56:168].mean()
    assert centre > heatmap.mean()
