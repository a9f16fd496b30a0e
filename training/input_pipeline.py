"""The tf.data pipeline that feeds training: decoded photos in memory, shuffled, augmented, batched.

Images leave it as uint8 and the model casts them (its input is float32 in [0, 255]): a quarter
of the bytes on their way to a GPU. Augmentation runs on the CPU, one photo per call, with its
own stateless seed, so calls run in parallel on every core and a seed still gives the same
photos, bit for bit, whatever thread runs them. With a GPU (or `augment_on="device"`) the pipeline
draws each photo's parameters only, and the training step augments on the device:
`training/device_augment.py`.
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


def batches(x, y, batch_size: int, *, seed: int, shuffle: bool = False, augment: bool = False,
            repeat: bool = False, augment_on: str = "cpu") -> tf.data.Dataset:
    """(x, y) in batches of `batch_size`; `augment` (photos only) applies `augment_photo` to each.

    `repeat`: endless (fit() then needs steps_per_epoch), so one iterator serves the whole run
    and every batch is full; otherwise each epoch starts a new iterator, and the shuffle buffer
    refills and the parallel calls ramp up again while a GPU waits.
    `augment_on="device"`: ((x, parameters), y) for `device_augment.wrap`'s model, which augments
    in its training step; each photo's parameters are drawn from the seed `augment_photo` would
    have had (zeros, unused, without `augment`: validation).
    """
    if augment_on not in ("cpu", "device"):
        raise ValueError(f"augment_on: expected cpu or device, got {augment_on!r}")
    d = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        d = d.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        d = d.repeat()
    if augment:
        # One seed per photo, drawn in the pipeline's order; new ones every epoch.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        d = tf.data.Dataset.zip((d, seeds)).map(_device_parameters if augment_on == "device" else
                                               lambda pair, s: (augment_photo(pair[0], s), pair[1]),
                                               num_parallel_calls=tf.data.AUTOTUNE)
    elif augment_on == "device":
        d = d.map(_no_parameters)
    d = d.batch(batch_size)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.threading.max_intra_op_parallelism = 1  # the calls run in parallel: each on one thread
    return d.with_options(options).prefetch(tf.data.AUTOTUNE)


def _device_parameters(pair, seed):
    from training import device_augment

    image, label = pair
    return (image, device_augment.parameters(seed, tf.shape(image)[:2])), label


def _no_parameters(image, label):
    from training import device_augment

    return (image, tf.zeros([device_augment.PARAMETERS])), label


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
