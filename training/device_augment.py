"""Augmentation on the training device: `augment_photo`'s transforms on whole batches, inside fit()'s step.

With a GPU, augmenting one photo per tf.data call on the CPU feeds about half of what the GPU trains
on (bench/RESULTS.md, "GPU input pipeline"). Here the pipeline only draws each photo's parameters
from its seed, 11 numbers (`parameters`: TensorFlow's stateless random ops take one seed per call,
so the draws cannot be made for a batch at once, and on the device they would be hundreds of tiny
kernels per step), and the pixels are transformed a batch at a time in the training step, on the
device (`apply`): the mirror image, one ImageProjectiveTransformV3 warp for the whole batch,
brightness and contrast. The seeds are those the CPU path gives the same photos, and the draws and
the float arithmetic are `augment_photo`'s: on the CPU the photos come out the same bit for bit
(tests/integration/test_device_augment.py); a GPU's kernels may round differently.

`wrap(model)` is the model fit() trains: (uint8 photos, parameters) -> model(augmented photos). It
shares the model's weights and adds none, so callbacks that save or restore its weights act on the
model's; the model itself (the one exported) holds no augmentation.
"""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from tensorflow.python.ops import gen_image_ops

from chalicelib.contract.hyperparameters import AUGMENT_ON as CHOICES  # the hyperparameter's choices
from training.augmentation import CONTRAST, MAX_BRIGHTNESS, MAX_ROTATION, MIN_SCALE, rotation_transform, warp

PARAMETERS = 11  # mirrored (0 or 1), the warp's 8 coefficients, brightness delta, contrast factor


def where(augment_on: str, augmentation: bool = True) -> str:
    """Where the hyperparameter `augment_on` puts augmentation: "device" (auto: when TensorFlow sees a GPU),
    "cpu" (tf.data, one photo per call), or "none" when there is no augmentation."""
    if augment_on not in CHOICES:
        raise ValueError(f"augment_on: expected one of {', '.join(CHOICES)}, got {augment_on!r}")
    if not augmentation:
        return "none"
    if augment_on == "auto":
        return "device" if tf.config.list_physical_devices("GPU") else "cpu"
    return augment_on


def parameters(seed: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """What `augment_photo` draws from `seed` for a photo of `size` (height, width), as 11 float32:
    mirrored, the warp's coefficients, the brightness delta, the contrast factor (`apply` uses them)."""
    flip, angle, scale, brightness, contrast = tf.unstack(tf.random.experimental.stateless_split(seed, 5))
    mirrored = tf.random.stateless_uniform([], flip, minval=0, maxval=1.0) < 0.5  # stateless_random_flip_left_right's
    transform = rotation_transform(size, tf.random.stateless_uniform([], angle, -MAX_ROTATION, MAX_ROTATION),
                                   tf.random.stateless_uniform([], scale, MIN_SCALE, 1.0))
    delta = tf.random.stateless_uniform([], brightness, minval=-MAX_BRIGHTNESS, maxval=MAX_BRIGHTNESS)
    factor = tf.random.stateless_uniform([], contrast, minval=CONTRAST[0], maxval=CONTRAST[1])
    return tf.concat([[tf.cast(mirrored, tf.float32)], transform, [delta, factor]], axis=0)


def apply(images: tf.Tensor, params: tf.Tensor) -> tf.Tensor:
    """uint8 (batch, height, width, 3) photos augmented as `parameters` (batch, 11) say; uint8 out.

    The arithmetic of tf.image's adjust_brightness and adjust_contrast on uint8, with one delta and one
    factor per photo: each photo's channel means are AdjustContrastv2's own (run with factor 0, it
    returns them), so the sums add up in the same order as `augment_photo`'s."""
    images = tf.convert_to_tensor(images)
    mirrored = params[:, 0, None, None, None] > 0.5
    images = tf.where(mirrored, tf.reverse(images, axis=[2]), images)
    images = warp(images, params[:, 1:9])
    delta, factor = params[:, 9, None, None, None], params[:, 10, None, None, None]
    images = tf.image.convert_image_dtype(tf.image.convert_image_dtype(images, tf.float32) + delta, tf.uint8,
                                          saturate=True)
    pixels = tf.image.convert_image_dtype(images, tf.float32)
    means = gen_image_ops.adjust_contrastv2(pixels, contrast_factor=0.0)
    return tf.image.convert_image_dtype((pixels - means) * factor + means, tf.uint8, saturate=True)


def augment_batch(images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """uint8 (batch, height, width, 3) photos, each augmented as `augment_photo(photo, seed)` with its row
    of `seeds` (batch, 2): the parameters drawn one photo at a time, the pixels a batch at a time."""
    images = tf.convert_to_tensor(images)
    size = tf.shape(images)[1:3]
    params = tf.map_fn(lambda seed: parameters(seed, size), tf.convert_to_tensor(seeds),
                       fn_output_signature=tf.float32)
    return apply(images, params)


@keras.saving.register_keras_serializable(package="flowers")
class DeviceAugment(keras.layers.Layer):
    """[uint8 photos, parameters (batch, 11)] -> float32 photos in [0, 255]: augmented by `apply` in
    training, only cast otherwise (validation). Float32 even under mixed precision: the values are the
    uint8 ones, which the model casts as it would have cast uint8 photos. No weights."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.supports_jit = False  # ImageProjectiveTransformV3 has no XLA kernel

    def call(self, inputs, training=None):
        images, params = inputs
        if training:
            images = apply(images, params)
        return tf.cast(images, tf.float32)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])


def wrap(model: keras.Model) -> keras.Model:
    """The model fit() trains when augmenting on the device: (photos, parameters) -> `model`'s output,
    with `model`'s own weights (the same variables). `input_pipeline.batches(..., augment_on="device")`
    feeds it. Build it in the strategy's scope, as the model was."""
    from training.model import SyncedModel

    photos = keras.Input(model.input_shape[1:], dtype="uint8", name="photos")
    params = keras.Input((PARAMETERS,), dtype="float32", name="augmentation")
    augmented = DeviceAugment(name="augment")([photos, params])
    return SyncedModel([photos, params], model(augmented), name=f"{model.name}_augmented_on_device")
