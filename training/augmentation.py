"""One photo's augmentation: the transforms and their ranges, shared by the CPU path (tf.data, one photo per
call: `training/input_pipeline.py`) and the device path (a batch at a time in the training step:
`training/device_augment.py`), so both give the same photos for the same seed.
"""
from __future__ import annotations

import math

import tensorflow as tf

# The ranges of the Keras layers this replaced: RandomFlip("horizontal"), RandomRotation(0.08),
# RandomZoom((-0.2, 0)), RandomBrightness(0.15) and RandomContrast(0.15), on [0, 255] pixels.
MAX_ROTATION = 0.08 * 2 * math.pi  # radians, either way
MIN_SCALE = 0.8  # zoom in by up to 20 %: the warp samples 80-100 % of the photo's width
MAX_BRIGHTNESS = 0.15  # of the full range, either way
CONTRAST = (0.85, 1.15)


def augment_photo(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """A uint8 (height, width, 3) photo mirrored at random, rotated and zoomed in one warp, then
    brightened and contrasted at random; uint8 out. Stateless: `seed` (2 integers) decides it all."""
    flip, angle, scale, brightness, contrast = tf.unstack(tf.random.experimental.stateless_split(seed, 5))
    image = tf.image.stateless_random_flip_left_right(image, flip)
    image = rotate_and_zoom(image,
                            tf.random.stateless_uniform([], angle, -MAX_ROTATION, MAX_ROTATION),
                            tf.random.stateless_uniform([], scale, MIN_SCALE, 1.0))
    image = tf.image.stateless_random_brightness(image, MAX_BRIGHTNESS, brightness)
    return tf.image.stateless_random_contrast(image, *CONTRAST, contrast)


def rotate_and_zoom(image: tf.Tensor, angle: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """One bilinear warp about the centre (reflecting at the edges): rotated by `angle` radians,
    showing `scale` (<= 1: zoomed in) of the photo. Two separate warps would cost twice as much.
    Nearest-neighbour sampling would halve the warp (most of the augmentation's time) but cost
    accuracy: bench/RESULTS.md."""
    warped = warp(image[None], rotation_transform(tf.shape(image)[:2], angle, scale)[None])
    return warped[0]


def rotation_transform(size: tf.Tensor, angle: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """The 8 coefficients of `rotate_and_zoom`'s warp for photos of `size` (height, width)."""
    height, width = tf.unstack(tf.cast(size, tf.float32))
    cx, cy = (width - 1) / 2, (height - 1) / 2
    cos, sin = scale * tf.cos(angle), scale * tf.sin(angle)
    # Where each output pixel (x, y) samples the input: centre + scale * R(angle) * (x - cx, y - cy).
    return tf.stack([cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0])


def warp(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """(batch, height, width, 3) photos, each warped by its row of `transforms` (batch, 8): bilinear, reflecting."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")
