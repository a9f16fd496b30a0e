"""The classifier: preset preprocessing + backbone + pooled features + a softmax head.

The same layers form two models: `extractor` (pixels -> pooled features, run once to
cache phase-1 features) and `full` (pixels -> class probabilities, fine-tuned and
exported). The backbone is always called in inference mode so batch-norm statistics
stay those of the pretrained weights while its top layers are fine-tuned.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from training.familiarity import FLOOR_LOGIT
from training.presets import Preset


@keras.saving.register_keras_serializable(package="flowers")
class SyncedModel(keras.Model):
    """A functional keras.Model whose fit() also runs under MultiWorkerMirroredStrategy.

    Keras 3 reduces every step's scalar logs across workers with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars
    (keras-team/keras#20585). Giving the logs one dimension there makes the mean work;
    on one host nothing changes. Other backends (the JAX one runs bench/gpu_input.py where
    only a CUDA build of JAX exists) pass through.
    """

    def _synced(self, logs):
        if keras.backend.backend() != "tensorflow":
            return logs
        import tensorflow as tf

        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            return {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def train_step(self, *args):  # (data) on TensorFlow, (state, data) on JAX
        return self._synced(super().train_step(*args))

    def test_step(self, *args):
        return self._synced(super().test_step(*args))


def prepare_multi_worker(model: keras.Model) -> None:
    """Skip Keras' symbolic build, which reduces a data batch across workers and fails
    (keras-team/keras#20585); fit() must then run inside `strategy.scope()`."""
    model._distribute_strategy = None


@dataclass
class Classifier:
    full: keras.Model
    extractor: keras.Model
    head: keras.Model
    backbone: keras.Model


def build(preset: Preset, weights: str | None, image_size: int, num_classes: int, dropout: float) -> Classifier:
    inputs = keras.Input((image_size, image_size, 3), name="image")  # RGB in [0, 255]
    x = preset.preprocess_layer()(inputs)
    backbone = preset.backbone(weights, image_size)
    backbone.trainable = False
    x = backbone(x, training=False)
    features = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    head_input = keras.Input((features.shape[-1],), name="features")
    h = keras.layers.Dropout(dropout, name="dropout")(head_input)
    # float32 output even under mixed precision: softmax in float16 loses accuracy.
    h = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(h)
    head = SyncedModel(head_input, h, name="head")
    full = SyncedModel(inputs, head(features), name=f"flowers_{preset.name}")
    extractor = keras.Model(inputs, features, name=f"{preset.name}_features")
    return Classifier(full, extractor, head, backbone)


def unfreeze_top(backbone: keras.Model, count: int) -> int:
    """Make the top `count` layers trainable, batch-norm excepted. Returns how many became trainable."""
    backbone.trainable = True
    layers = backbone.layers
    cut = max(0, len(layers) - count)
    unfrozen = 0
    for index, layer in enumerate(layers):
        layer.trainable = index >= cut and not isinstance(layer, keras.layers.BatchNormalization)
        unfrozen += int(layer.trainable and bool(layer.weights))
    return unfrozen


def calibrated(clf: Classifier, temperature: float, gate: dict[str, np.ndarray] | None = None) -> keras.Model:
    """The exported model: the trained layers with the head's logits divided by `temperature` before
    the softmax (temperature scaling: calibrated scores, the same top class) and, given a familiarity
    gate's constants (`Familiarity.constants()`), those scores times how familiar the photo looks.
    It shares the trained weights; training itself is unchanged."""
    trained = clf.head.get_layer("predictions")
    features = clf.extractor.output
    dense = keras.layers.Dense(trained.units, dtype="float32", name="logits")
    logits = dense(features)
    dense.set_weights(trained.get_weights())
    scaled = keras.layers.Rescaling(1.0 / temperature, dtype="float32", name="temperature")(logits)
    scores = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(scaled)
    if gate is not None:
        layer = FamiliarityGate(rank=gate["basis"].shape[1], means=gate["means_along"].shape[0], name=GATE_LAYER)
        scores = layer([scores, features])
        layer.set_weights([gate[name] for name in FamiliarityGate.CONSTANTS])
    name = clf.full.name
    return keras.Model(clf.extractor.input, scores, name=name)


GATE_LAYER = "familiarity"


@keras.saving.register_keras_serializable(package="flowers")
class FamiliarityGate(keras.layers.Layer):
    """[scores, features] -> scores x sigmoid((centre - distance) / scale): training.familiarity's factor
    computed in the graph, from its constants held as non-trainable weights (model.keras keeps them).
    Only sums of squares of differences: it stays accurate when the converter quantises it."""

    CONSTANTS = ("basis", "inverse_sd", "means_along", "means_rest", "inverse_residual_sd", "centre_scale")

    def __init__(self, rank: int, means: int, **kwargs):
        kwargs["dtype"] = "float32"  # distances of float16 features lose too much
        super().__init__(**kwargs)
        self.rank, self.means = int(rank), int(means)

    def get_config(self):
        return {**super().get_config(), "rank": self.rank, "means": self.means}

    def build(self, input_shape):
        dims = int(input_shape[1][-1])
        shapes = {"basis": (dims, self.rank), "inverse_sd": (self.rank,), "means_along": (self.means, self.rank),
                  "means_rest": (self.means, dims), "inverse_residual_sd": (1,), "centre_scale": (2,)}
        self.constants = {name: self.add_weight(name=name, shape=shapes[name], initializer="zeros", trainable=False)
                          for name in self.CONSTANTS}

    def call(self, inputs):
        ops, c = keras.ops, self.constants
        scores, features = inputs
        z = ops.normalize(ops.cast(features, "float32"), axis=-1, order=2)  # an rsqrt: LiteRT has int8 kernels for it
        along = ops.matmul(z, c["basis"])
        rest = (z - ops.matmul(along, ops.transpose(c["basis"]))) * c["inverse_residual_sd"]
        along = along * c["inverse_sd"]
        d_along = ops.sum(ops.square(ops.expand_dims(along, 1) - c["means_along"]), axis=-1)
        d_rest = ops.sum(ops.square(ops.expand_dims(rest, 1) - c["means_rest"]), axis=-1)
        distance = ops.min(d_along + d_rest, axis=-1, keepdims=True)
        logit = ops.maximum((c["centre_scale"][0] - distance) / c["centre_scale"][1], FLOOR_LOGIT)
        factor = ops.sigmoid(logit)
        return ops.cast(scores, "float32") * factor

    def compute_output_shape(self, input_shape):
        return input_shape[0]
