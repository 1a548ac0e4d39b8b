"""Keras models from a declarative spec (helpers.config.specs.ModelSpec as a dict): dense MLPs and small CNNs."""
from __future__ import annotations

import keras
from keras import layers, regularizers


def initializer(spec: dict):
    # R1's rule: He-normal suits ReLU-like units, Glorot-uniform the saturating ones.
    if spec.get("init_stddev") is not None:  # a new instance per layer: each draws its own weights
        return keras.initializers.TruncatedNormal(stddev=spec["init_stddev"])
    if spec["initializer"] != "auto":
        return spec["initializer"]
    return "he_normal" if spec["activation"] in ("relu", "elu", "selu", "gelu", "swish") else "glorot_uniform"


def _dense_block(x, units: int, spec: dict):
    penalty = regularizers.L1L2(l1=spec["l1"], l2=spec["l2"]) if spec["l1"] or spec["l2"] else None
    if spec["batch_norm"]:
        # Normalise pre-activations, so the Dense bias is redundant.
        x = layers.Dense(units, use_bias=False, kernel_initializer=initializer(spec),
                         kernel_regularizer=penalty)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation(spec["activation"])(x)
    else:
        x = layers.Dense(units, activation=spec["activation"], kernel_initializer=initializer(spec),
                         kernel_regularizer=penalty)(x)
    if spec["dropout"] > 0:
        drop = layers.GaussianDropout if spec["dropout_kind"] == "gaussian" else layers.Dropout
        x = drop(spec["dropout"])(x)
    return x


def build(spec: dict, input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    """An uncompiled model: input -> (conv blocks) -> dense blocks -> softmax (sigmoid for 2 classes)."""
    inputs = keras.Input(shape=input_shape)
    x = inputs
    if spec["kind"] == "cnn":
        if len(input_shape) == 2:
            x = layers.Reshape((*input_shape, 1))(x)
        for f in spec["filters"]:
            x = layers.Conv2D(f, spec["kernel_size"], padding="same", activation=spec["activation"],
                              kernel_initializer=initializer(spec))(x)
            x = layers.MaxPooling2D(spec["pool_size"])(x)
            if spec["conv_dropout"] > 0:
                x = layers.SpatialDropout2D(spec["conv_dropout"])(x)
    x = layers.Flatten()(x)
    for units in spec["hidden"]:
        x = _dense_block(x, units, spec)
    # Two classes: one sigmoid unit (R1/R2's binary set-up); more: a softmax over the classes.
    outputs = (layers.Dense(1, activation="sigmoid") if n_classes == 2
               else layers.Dense(n_classes, activation="softmax"))(x)
    return keras.Model(inputs, outputs)
