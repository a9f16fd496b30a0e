"""The training input pipeline: the augmentation's geometry, its seeds, and what the batches hold."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from chalicelib.contract.imaging import load_pixels
from data_fixtures import PHOTOS, require_photos
from training import augmentation
from training import input_pipeline as ip


def _grid(size: int = 9) -> np.ndarray:
    """A float photo whose every pixel is different, so a warp's mapping can be read off (float:
    bilinear weights of 1e-7 at sin(pi) would tip a uint8 down by one)."""
    return np.arange(size * size * 3, dtype=np.float32).reshape(size, size, 3)


def _real_photo(size: int = 96) -> np.ndarray:
    require_photos()
    path = sorted((PHOTOS / "tulips").glob("*.jpg"))[0]
    return load_pixels(path.read_bytes(), size).pixels


def test_no_rotation_and_no_zoom_leave_the_photo_as_it_is():
    image = _grid()
    assert np.allclose(augmentation.rotate_and_zoom(image, 0.0, 1.0).numpy(), image)


def test_a_quarter_turn_is_a_quarter_turn_about_the_centre():
    image = _grid()
    turned = augmentation.rotate_and_zoom(image, math.pi / 2, 1.0).numpy()
    assert np.allclose(turned, np.rot90(image, k=1), atol=1e-3) or np.allclose(turned, np.rot90(image, k=-1), atol=1e-3)
    assert not np.allclose(turned, image)
    # The other direction turns it the other way.
    back = augmentation.rotate_and_zoom(image, -math.pi / 2, 1.0).numpy()
    assert np.allclose(np.rot90(turned, 2), back, atol=1e-3)


def test_zoom_samples_the_middle_of_the_photo():
    image = _grid(9)  # centre (4, 4); scale 0.5 shows the middle half: output (0, 0) samples input (2, 2)
    zoomed = augmentation.rotate_and_zoom(image, 0.0, 0.5).numpy()
    assert np.allclose(zoomed[4, 4], image[4, 4])
    assert np.allclose(zoomed[0, 0], image[2, 2])
    assert np.allclose(zoomed[8, 8], image[6, 6])
    assert np.allclose(zoomed[1, 0], (image[2, 2] + image[3, 2]) / 2)  # between two pixels: bilinear


def test_augment_photo_is_decided_by_its_seed():
    photo = _real_photo()
    one = augmentation.augment_photo(photo, tf.constant([3, 4], tf.int64)).numpy()
    again = augmentation.augment_photo(photo, tf.constant([3, 4], tf.int64)).numpy()
    other = augmentation.augment_photo(photo, tf.constant([5, 6], tf.int64)).numpy()
    assert one.dtype == np.uint8 and one.shape == photo.shape
    assert (one == again).all()
    assert not (one == other).all()
    assert not (one == photo).all()


@pytest.mark.parametrize("seed", range(8))
def test_augmented_photos_stay_close_to_the_photo(seed):
    """Within the ranges (at most ~29 degrees, 20 % zoom, 15 % brightness and contrast), a photo
    stays itself: its mean colour moves a little, it is not blanked or saturated."""
    photo = _real_photo()
    out = augmentation.augment_photo(photo, tf.constant([seed, 99], tf.int64)).numpy()
    assert abs(float(out.mean()) - float(photo.mean())) < 0.25 * 255
    assert out.std() > 0.5 * photo.std()


def _augmented_epochs(seed: int, photos: np.ndarray, epochs: int = 2):
    labels = np.arange(len(photos), dtype=np.int32)
    d = ip.batches(photos, labels, len(photos), seed=seed, augment=True, repeat=True)
    return [batch for batch, _ in d.take(epochs).as_numpy_iterator()]


def test_augmented_batches_are_reproducible_and_new_every_epoch():
    photos = np.stack([_real_photo(64)] * 4)
    first, second = _augmented_epochs(1, photos)
    again = _augmented_epochs(1, photos)
    other = _augmented_epochs(2, photos)
    assert first.dtype == np.uint8 and first.shape == photos.shape
    assert all((a == b).all() for a, b in zip((first, second), again))  # same seed, same photos
    assert not (first == second).all()  # the next epoch draws new transformations
    assert not (first == other[0]).all()  # another seed, other photos
    # Four copies of one photo, each with its own seed: four different photos.
    assert len({first[i].tobytes() for i in range(4)}) == 4


def test_endless_batches_are_all_full_and_images_stay_uint8():
    x = np.zeros((10, 8, 8, 3), np.uint8)
    y = np.arange(10, dtype=np.int32)
    batches = list(ip.batches(x, y, 4, seed=0, shuffle=True, repeat=True).take(6).as_numpy_iterator())
    assert all(images.shape == (4, 8, 8, 3) and images.dtype == np.uint8 for images, _ in batches)
    # Every photo comes once per pass: the first 20 labels are two passes over 0..9.
    labels = np.concatenate([labels for _, labels in batches])[:20]
    assert sorted(labels[:10]) == list(range(10)) and sorted(labels[10:]) == list(range(10))
    finite = list(ip.batches(x, y, 4, seed=0).as_numpy_iterator())
    assert [len(labels) for _, labels in finite] == [4, 4, 2]


@pytest.mark.parametrize("augment_on", ["cpu", "device"])
def test_an_endless_pipeline_starts_the_same_whatever_an_earlier_iterator_read(augment_on):
    """fit() under a tf.distribute strategy builds the model from one batch of an iterator it then drops,
    whose threads read ahead as far as the machine's load lets them, into later epochs: each iterator of
    an endless pipeline gives the same photos and seeds, as a single iterator would, however far another
    one got (here: three epochs, as a loaded machine's read-ahead might)."""
    x = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 8, 8, 3), np.uint8)
    y = np.arange(10, dtype=np.int32)
    d = ip.batches(x, y, 5, seed=3, shuffle=True, augment=True, repeat=True, augment_on=augment_on)
    first = [tf.nest.flatten(b) for b in d.take(6).as_numpy_iterator()]
    again = [tf.nest.flatten(b) for b in d.take(6).as_numpy_iterator()]
    assert all(np.array_equal(a, b) for one, other in zip(first, again) for a, b in zip(one, other))
    assert not np.array_equal(first[0][-1], first[2][-1])  # yet each epoch in one iterator is shuffled anew
