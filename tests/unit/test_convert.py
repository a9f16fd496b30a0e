"""training/convert.py's choice of quantisation: the smallest model within half a point."""
from training import convert as cv


def test_auto_picks_the_smallest_within_half_a_point():
    candidates = [
        {"quantization": "fp32", "size_bytes": 400, "held_out_accuracy": 0.950},
        {"quantization": "fp16", "size_bytes": 200, "held_out_accuracy": 0.950},
        {"quantization": "dynamic", "size_bytes": 110, "held_out_accuracy": 0.946},
        {"quantization": "int8", "size_bytes": 100, "held_out_accuracy": 0.940},
    ]
    assert cv.choose(candidates, 0.950)["quantization"] == "dynamic"
    assert cv.choose(candidates, 0.944)["quantization"] == "int8"
    # None close enough: keep the most accurate.
    assert cv.choose(candidates[2:], 0.99)["quantization"] == "dynamic"
    # A smaller model that changes the "not recognised" verdict of more than 2 % of the photos is not kept.
    candidates[3]["held_out_refusal_agreement"] = 0.95
    candidates[2]["held_out_refusal_agreement"] = 0.985
    assert cv.choose(candidates, 0.944)["quantization"] == "dynamic"
    candidates[2]["held_out_refusal_agreement"] = 0.97
    assert cv.choose(candidates, 0.944)["quantization"] == "fp16"
