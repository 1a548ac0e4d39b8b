"""Tests for helpers.run.models: architectures and parameter counts checked against hand arithmetic."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from helpers.config.specs import ModelSpec  # noqa: E402
from helpers.run import models  # noqa: E402

IN = 28 * 28


def spec(**kw) -> dict:
    # Through the schema, so the tests build exactly what a validated run hands to models.build.
    base = {"hidden": [128, 128], "activation": "relu", "dropout": 0.0, "conv_dropout": 0.0}
    return ModelSpec(**{**base, **kw}).model_dump()


def names(model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def dense(model) -> list:
    return [layer for layer in model.layers if type(layer).__name__ == "Dense"]


PARAM_COUNTS = [
    ("mlp 128x2", spec(), (IN * 128 + 128) + (128 * 128 + 128) + (128 * 10 + 10)),
    ("mlp 1x8", spec(hidden=[8]), (IN * 8 + 8) + (8 * 10 + 10)),
    # Batch norm: no Dense bias, plus gamma, beta, moving mean and variance per unit.
    ("mlp batch norm", spec(batch_norm=True), (IN * 128 + 4 * 128) + (128 * 128 + 4 * 128) + (128 * 10 + 10)),
    # Dropout and penalties add no weights.
    ("mlp dropout+l2", spec(dropout=0.3, l2=1e-3), (IN * 128 + 128) + (128 * 128 + 128) + (128 * 10 + 10)),
    ("cnn 8,16", spec(kind="cnn", filters=[8, 16], hidden=[32]),
     (3 * 3 * 1 * 8 + 8) + (3 * 3 * 8 * 16 + 16) + (7 * 7 * 16 * 32 + 32) + (32 * 10 + 10)),
    ("cnn kernel 5 pool 4", spec(kind="cnn", filters=[4], kernel_size=5, pool_size=4, hidden=[8]),
     (5 * 5 * 1 * 4 + 4) + (7 * 7 * 4 * 8 + 8) + (8 * 10 + 10)),
    ("cnn conv dropout", spec(kind="cnn", filters=[8, 16], hidden=[32], conv_dropout=0.1, dropout=0.2),
     (3 * 3 * 1 * 8 + 8) + (3 * 3 * 8 * 16 + 16) + (7 * 7 * 16 * 32 + 32) + (32 * 10 + 10)),
]


@pytest.mark.parametrize("model_spec, expected", [p[1:] for p in PARAM_COUNTS], ids=[p[0] for p in PARAM_COUNTS])
def test_parameter_count(model_spec, expected):
    model = models.build(model_spec, (28, 28), 10)
    assert model.count_params() == expected
    assert tuple(model.output.shape) == (None, 10)


def test_class_count_sets_the_output_layer():
    model = models.build(spec(hidden=[16]), (28, 28), 3)
    assert model.count_params() == (IN * 16 + 16) + (16 * 3 + 3)
    assert tuple(model.output.shape) == (None, 3)
    assert dense(model)[-1].activation.__name__ == "softmax"


def test_mlp_layers():
    model = models.build(spec(hidden=[64, 32], activation="tanh"), (28, 28), 10)
    assert names(model) == ["InputLayer", "Flatten", "Dense", "Dense", "Dense"]
    assert [d.units for d in dense(model)] == [64, 32, 10]
    assert [d.activation.__name__ for d in dense(model)] == ["tanh", "tanh", "softmax"]


def test_batch_norm_removes_the_dense_bias():
    model = models.build(spec(hidden=[32], batch_norm=True), (28, 28), 10)
    assert names(model) == ["InputLayer", "Flatten", "Dense", "BatchNormalization", "Activation", "Dense"]
    hidden, out = dense(model)
    assert hidden.use_bias is False and out.use_bias is True
    assert len(model.non_trainable_weights) == 2  # moving mean and variance


@pytest.mark.parametrize("dropout, kind, layer", [
    (0.2, "dropout", "Dropout"),
    (0.2, "gaussian", "GaussianDropout"),
    (0.0, "dropout", None),
    (0.0, "gaussian", None),
])
def test_dropout_layers(dropout, kind, layer):
    model = models.build(spec(hidden=[16, 16], dropout=dropout, dropout_kind=kind), (28, 28), 10)
    drops = [n for n in names(model) if "Dropout" in n]
    assert drops == ([layer] * 2 if layer else [])
    if layer:
        assert all(getattr(x, "rate") == pytest.approx(dropout) for x in model.layers if type(x).__name__ == layer)


@pytest.mark.parametrize("l1, l2", [(1e-3, 0.0), (0.0, 1e-3), (1e-4, 2e-3)])
def test_penalties_on_hidden_kernels(l1, l2):
    model = models.build(spec(hidden=[16, 16], l1=l1, l2=l2), (28, 28), 10)
    *hidden, out = dense(model)
    for layer in hidden:
        reg = layer.kernel_regularizer
        assert type(reg).__name__ == "L1L2"
        assert float(reg.l1) == pytest.approx(l1) and float(reg.l2) == pytest.approx(l2)
    # The softmax layer stays unpenalised, as in the R5 runs.
    assert out.kernel_regularizer is None


def test_no_penalty_no_regularizer():
    model = models.build(spec(hidden=[16]), (28, 28), 10)
    assert all(d.kernel_regularizer is None for d in dense(model))
    assert model.losses == []


@pytest.mark.parametrize("activation, initializer, expected", [
    ("relu", "auto", "HeNormal"),
    ("elu", "auto", "HeNormal"),
    ("tanh", "auto", "GlorotUniform"),
    ("sigmoid", "auto", "GlorotUniform"),
    ("tanh", "he_uniform", "HeUniform"),
    ("relu", "lecun_normal", "LecunNormal"),
])
def test_initializer(activation, initializer, expected):
    model = models.build(spec(hidden=[16], activation=activation, initializer=initializer), (28, 28), 10)
    assert type(dense(model)[0].kernel_initializer).__name__ == expected


def test_cnn_layers_and_shapes():
    model = models.build(spec(kind="cnn", filters=[8, 16], hidden=[32], conv_dropout=0.1), (28, 28), 10)
    assert names(model) == ["InputLayer", "Reshape", "Conv2D", "MaxPooling2D", "SpatialDropout2D",
                            "Conv2D", "MaxPooling2D", "SpatialDropout2D", "Flatten", "Dense", "Dense"]
    convs = [x for x in model.layers if type(x).__name__ == "Conv2D"]
    assert [tuple(c.output.shape) for c in convs] == [(None, 28, 28, 8), (None, 14, 14, 16)]
    flat = next(x for x in model.layers if type(x).__name__ == "Flatten")
    assert tuple(flat.output.shape) == (None, 7 * 7 * 16)
    assert tuple(model.output.shape) == (None, 10)
    assert type(convs[0].kernel_initializer).__name__ == "HeNormal"


def test_cnn_accepts_channel_last_input():
    model = models.build(spec(kind="cnn", filters=[4], hidden=[8]), (28, 28, 1), 10)
    assert "Reshape" not in names(model)
    assert model.count_params() == (3 * 3 * 4 + 4) + (14 * 14 * 4 * 8 + 8) + (8 * 10 + 10)


def test_mlp_ignores_conv_settings():
    plain = models.build(spec(hidden=[16]), (28, 28), 10)
    with_filters = models.build(spec(hidden=[16], filters=[8], conv_dropout=0.5), (28, 28), 10)
    assert names(plain) == names(with_filters)
    assert plain.count_params() == with_filters.count_params()


@pytest.mark.parametrize("blocks", [5, 6])
def test_cnn_with_too_many_pooling_blocks_raises(blocks):
    # 28 -> 14 -> 7 -> 3 -> 1 -> nothing left to pool: the failure a study run is expected to report.
    with pytest.raises(ValueError, match="output size"):
        models.build(spec(kind="cnn", filters=[4] * blocks, hidden=[8]), (28, 28), 10)


def test_cnn_with_four_pooling_blocks_still_builds():
    model = models.build(spec(kind="cnn", filters=[4] * 4, hidden=[8]), (28, 28), 10)
    flat = next(x for x in model.layers if type(x).__name__ == "Flatten")
    assert tuple(flat.output.shape) == (None, 4)


def seeded_build(model_spec: dict, seed: int):
    keras.utils.set_random_seed(seed)  # what training does before it builds a run's model
    return models.build(model_spec, (28, 28), 10, seed)  # every random layer seeded from the run's seed


def weights(model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]  # copies, not views of the variables


@pytest.mark.parametrize("model_spec", [
    spec(hidden=[8]),
    spec(hidden=[8, 8], batch_norm=True),
    # One TruncatedNormal per layer (models.initializer); a shared one must not tie builds together.
    spec(hidden=[8, 8], initializer="truncated_normal", init_stddev=0.5),
    spec(kind="cnn", filters=[4], hidden=[8]),
], ids=["mlp", "batch norm", "truncated normal", "cnn"])
def test_builds_are_independent(model_spec):
    a, b = seeded_build(model_spec, 0), seeded_build(model_spec, 0)
    before = weights(b)
    assert len(before) == len(weights(a)) > 0
    # Same spec and seed: the same starting weights, so a run is reproducible build after build.
    for wa, wb in zip(weights(a), before):
        np.testing.assert_array_equal(wa, wb)
    # A different seed draws different kernels.
    c = seeded_build(model_spec, 1)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(weights(a), weights(c)))
    # No shared variables: changing every weight of one model leaves the other as it was.
    a.set_weights([w + 1.0 for w in weights(a)])
    for wa, wb in zip(weights(a), before):
        np.testing.assert_array_equal(wa, wb + 1.0)
    for wb, w0 in zip(weights(b), before):
        np.testing.assert_array_equal(wb, w0)
