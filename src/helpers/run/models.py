"""Keras models from a declarative spec (helpers.config.specs.ModelSpec as a dict): dense MLPs and small CNNs.

Every random draw of a model (each layer's initial weights, each dropout layer's masks) has its own
seed, drawn in layer order from the run's seed. Left unseeded, Keras draws those seeds from Python's
global ``random`` state, which other threads of the process use too (a Dask worker's heartbeats):
a run's weights would then depend on the moment it started, not on its spec alone.
"""
from __future__ import annotations

import random

# Keras (and TensorFlow or JAX under it) loads only where a model is built: a kernel or a build
# that submits runs to the cluster never does.


class Seeds:
    """The seeds of one model's random layers, in the order they are built."""

    def __init__(self, seed: int):
        self._rng = random.Random(seed)

    def __call__(self) -> int:
        return self._rng.randint(1, 2**31 - 1)


def initializer(spec: dict, seeds: Seeds):
    import keras
    # R1's rule: He-normal suits ReLU-like units, Glorot-uniform the saturating ones.
    if spec.get("init_stddev") is not None:  # a new instance per layer: each draws its own weights
        return keras.initializers.TruncatedNormal(stddev=spec["init_stddev"], seed=seeds())
    name = spec["initializer"]
    if name == "auto":
        name = "he_normal" if spec["activation"] in ("relu", "elu", "selu", "gelu", "swish") else "glorot_uniform"
    return keras.initializers.get({"class_name": name, "config": {"seed": seeds()}})


def _dense_block(x, units: int, spec: dict, seeds: Seeds):
    from keras import layers, regularizers
    penalty = regularizers.L1L2(l1=spec["l1"], l2=spec["l2"]) if spec["l1"] or spec["l2"] else None
    if spec["batch_norm"]:
        # Normalise pre-activations, so the Dense bias is redundant.
        x = layers.Dense(units, use_bias=False, kernel_initializer=initializer(spec, seeds),
                         kernel_regularizer=penalty)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation(spec["activation"])(x)
    else:
        x = layers.Dense(units, activation=spec["activation"], kernel_initializer=initializer(spec, seeds),
                         kernel_regularizer=penalty)(x)
    if spec["dropout"] > 0:
        drop = layers.GaussianDropout if spec["dropout_kind"] == "gaussian" else layers.Dropout
        x = drop(spec["dropout"], seed=seeds())(x)
    return x


def build(spec: dict, input_shape: tuple[int, ...], n_classes: int, seed: int = 0):
    """An uncompiled keras.Model: input -> (conv blocks) -> dense blocks -> softmax (sigmoid for 2
    classes), its random layers seeded from ``seed`` (the run's)."""
    import keras
    from keras import layers
    seeds = Seeds(seed)
    inputs = keras.Input(shape=input_shape)
    x = inputs
    if spec["kind"] == "cnn":
        if len(input_shape) == 2:
            x = layers.Reshape((*input_shape, 1))(x)
        for f in spec["filters"]:
            x = layers.Conv2D(f, spec["kernel_size"], padding="same", activation=spec["activation"],
                              kernel_initializer=initializer(spec, seeds))(x)
            x = layers.MaxPooling2D(spec["pool_size"])(x)
            if spec["conv_dropout"] > 0:
                x = layers.SpatialDropout2D(spec["conv_dropout"], seed=seeds())(x)
    x = layers.Flatten()(x)
    for units in spec["hidden"]:
        x = _dense_block(x, units, spec, seeds)
    # Two classes: one sigmoid unit (R1/R2's binary set-up); more: a softmax over the classes.
    out = keras.initializers.GlorotUniform(seed=seeds())  # Keras's default for Dense, seeded
    outputs = (layers.Dense(1, activation="sigmoid", kernel_initializer=out) if n_classes == 2
               else layers.Dense(n_classes, activation="softmax", kernel_initializer=out))(x)
    return keras.Model(inputs, outputs)
