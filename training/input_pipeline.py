"""The tf.data pipeline that feeds training: decoded photos in memory, shuffled, augmented, batched.

Images leave it as uint8 and the model casts them (its input is float32 in [0, 255]): a quarter
of the bytes on their way to a GPU. Augmentation runs on the CPU, one photo per call, with its
own stateless seed, so calls run in parallel on every core and a seed still gives the same
photos, bit for bit, whatever thread runs them. With a GPU (or `augment_on="device"`) the pipeline
draws each photo's parameters only, and the training step augments on the device:
`training/device_augment.py`.
"""
from __future__ import annotations

import tensorflow as tf

from training.augmentation import augment_photo


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
    photos = tf.data.Dataset.from_tensor_slices((x, y))

    def photo_stream(_=None) -> tf.data.Dataset:
        d = photos
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
        return d

    # Endless, the stream is built anew for each iterator, with its own seed generators. Shuffle's and
    # random's are otherwise shared by every iterator of the dataset, and shuffle's draws at each
    # repetition: an iterator dropped after one batch (fit() under a tf.distribute strategy builds the
    # model from one, then starts over) reads ahead into its next epochs, as far as the machine's load
    # lets it, and takes seeds the training iterator would have had. Each iterator starts with the
    # seeds of the first (on one device, the one iterator: the same photos). Not when each epoch is a
    # new iterator: those must draw new seeds, and draw them as they start (no repetition, no read-ahead).
    d = tf.data.Dataset.range(1).flat_map(photo_stream) if repeat else photo_stream()
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
