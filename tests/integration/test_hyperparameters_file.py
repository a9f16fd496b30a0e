"""training.hyperparameters with a file: a weights file that exists is taken as it is."""
from training.hyperparameters import parse


def test_weights_file(tmp_path):
    path = tmp_path / "w.h5"
    path.write_bytes(b"x")
    assert parse({"weights": str(path)}).resolved_weights() == str(path)
    # whether it exists is the backbone's to find out (training/presets.py): parse takes the Lambda's verdict
    assert parse({"weights": "/no/such/file.h5"}).resolved_weights() == "/no/such/file.h5"
