"""chalicelib.contract.imaging on a real photo of the shared data set."""
import numpy as np

from chalicelib.contract.imaging import load_pixels
from data_fixtures import PHOTOS, require_photos


def test_real_photo_is_deterministic_and_resized():
    require_photos()
    photo = sorted((PHOTOS / "roses").glob("*.jpg"))[0].read_bytes()
    a, b = load_pixels(photo, 224), load_pixels(photo, 224)
    assert a.pixels.shape == (224, 224, 3)
    assert np.array_equal(a.pixels, b.pixels)
    assert max(a.original_size) >= 240
