"""The classifier: preset preprocessing + backbone + pooled features + a softmax head.

The same layers form two models: `extractor` (pixels -> pooled features, run once to
cache phase-1 features) and `full` (pixels -> class probabilities, fine-tuned and
exported). The backbone is always called in inference mode so batch-norm statistics
stay those of the pretrained weights while its top layers are fine-tuned.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras

from training.presets import Preset


@dataclass
class Classifier:
    full: keras.Model
    extractor: keras.Model
    head: keras.Model
    backbone: keras.Model


def build(preset: Preset, weights: str | None, image_size: int, num_classes: int, dropout: float) -> Classifier:
    inputs = keras.Input((image_size, image_size, 3), name="image")  # RGB in [0, 255]
    x = preset.preprocess_layer()(inputs)
    backbone = preset.backbone(weights, image_size)
    backbone.trainable = False
    x = backbone(x, training=False)
    features = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    head = keras.Sequential(
        [
            keras.Input((features.shape[-1],)),
            keras.layers.Dropout(dropout, name="dropout"),
            # float32 output even under mixed precision: softmax in float16 loses accuracy.
            keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions"),
        ],
        name="head",
    )
    full = keras.Model(inputs, head(features), name=f"flowers_{preset.name}")
    extractor = keras.Model(inputs, features, name=f"{preset.name}_features")
    return Classifier(full, extractor, head, backbone)


def unfreeze_top(backbone: keras.Model, count: int) -> int:
    """Make the top `count` layers trainable, batch-norm excepted. Returns how many became trainable."""
    backbone.trainable = True
    layers = backbone.layers
    cut = max(0, len(layers) - count)
    unfrozen = 0
    for index, layer in enumerate(layers):
        layer.trainable = index >= cut and not isinstance(layer, keras.layers.BatchNormalization)
        unfrozen += int(layer.trainable and bool(layer.weights))
    return unfrozen


def augmentation(seed: int) -> keras.Sequential:
    """Flip, rotate, zoom/crop and colour jitter; applied in the tf.data pipeline, never exported."""
    layers = keras.layers
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.08, fill_mode="reflect", seed=seed + 1),
            layers.RandomZoom((-0.2, 0.0), fill_mode="reflect", seed=seed + 2),
            layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed + 3),
            layers.RandomContrast(0.15, value_range=(0, 255), seed=seed + 4),
        ],
        name="augmentation",
    )
