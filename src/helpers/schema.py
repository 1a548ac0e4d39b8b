"""Declarative parameter constraints: what every key may hold, and how a study becomes runs.

Each study kind declares only its swept values; everything else comes from ``base`` (with the
study's own ``model:`` / ``training:`` overrides). ``points()`` turns a study into
``(label, axis, patch)`` triples; the patch is merged over the study's base configuration.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal, Optional

from pydantic import (BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, ValidationError,
                      create_model, field_validator, model_validator)

Activation = Literal["relu", "tanh", "sigmoid", "elu", "selu", "gelu", "swish"]
# Cross-entropy names all mean "the cross-entropy that fits the task" (softmax or sigmoid output).
Loss = Literal["crossentropy", "categorical_crossentropy", "binary_crossentropy", "mse"]
Optimizer = Literal["sgd", "adam", "rmsprop"]
Initializer = Literal["auto", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal",
                      "truncated_normal"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(Strict):
    # filters comes before kind so that kind's check can see it and the error names `kind`,
    # the key a user changes when turning a dense model into a CNN.
    filters: list[PositiveInt] = []
    kind: Literal["mlp", "cnn"] = "mlp"
    hidden: list[PositiveInt]
    activation: Activation
    initializer: Initializer = "auto"
    dropout: float = Field(0.0, ge=0, lt=1)
    dropout_kind: Literal["dropout", "gaussian"] = "dropout"
    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)
    batch_norm: bool = False
    kernel_size: PositiveInt = 3
    pool_size: PositiveInt = 2
    conv_dropout: float = Field(0.0, ge=0, lt=1)
    # Keys checked together: an error is blamed on whichever of them the user set last.
    linked: ClassVar[dict[str, tuple[str, ...]]] = {"kind": ("filters",)}

    @field_validator("kind")
    @classmethod
    def _cnn_has_filters(cls, kind, info):
        if kind == "cnn" and not info.data.get("filters"):
            raise ValueError("a cnn needs at least one entry in filters (conv channels per block)")
        return kind


class EarlyStopping(Strict):
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    patience: NonNegativeInt = 3


class TrainingSpec(Strict):
    optimizer: Optimizer
    learning_rate: float = Field(gt=0)
    batch_size: PositiveInt
    epochs: PositiveInt
    loss: Loss
    early_stopping: Optional[EarlyStopping] = None


MODEL_KEYS = tuple(ModelSpec.model_fields)
TRAINING_KEYS = tuple(TrainingSpec.model_fields)


def _partial(name: str, *models: type[BaseModel]) -> type[BaseModel]:
    """The same keys and types as ``models``, all optional: an override holds only what differs."""
    fields = {k: (Optional[f.annotation], None) for m in models for k, f in m.model_fields.items()}
    return create_model(name, __base__=Strict, **fields)


ModelPatch = _partial("ModelPatch", ModelSpec)
TrainingPatch = _partial("TrainingPatch", TrainingSpec)
Variant = _partial("Variant", ModelSpec, TrainingSpec)


def split_patch(patch: dict) -> tuple[dict, dict]:
    """A flat variant ({dropout: .3, optimizer: sgd}) into its model and training parts."""
    return ({k: v for k, v in patch.items() if k in MODEL_KEYS},
            {k: v for k, v in patch.items() if k in TRAINING_KEYS})


class Profile(Strict):
    train_samples: Optional[PositiveInt] = None
    test_samples: Optional[PositiveInt] = None
    epochs: Optional[PositiveInt] = None


class DataSettings(Strict):
    validation_split: float = Field(0.2, gt=0, lt=1)
    # stratified: a seeded stratified sample; head: the first samples (R1: the first 10,000 reviews)
    validation_method: Literal["stratified", "head"] = "stratified"
    num_words: PositiveInt = 10000  # imdb: vocabulary size of the multi-hot features


class Base(Strict):
    model: ModelSpec
    training: TrainingSpec


class Report(Strict):
    title: str
    author: str = ""
    course: str = ""
    date: Optional[dt.date | str] = None
    # Optional prose in Markdown (raw HTML is shown as text): the report's Introduction and the
    # user's part of its Discussion.
    introduction: str = ""
    discussion: str = ""
    dataset: str
    profile: Literal["smoke", "quick", "full"] = "quick"
    seed: NonNegativeInt = 42
    data: DataSettings = DataSettings()
    profiles: dict[Literal["smoke", "quick", "full"], Profile]
    base: Base
    studies: dict[str, Any]

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        from helpers.data import DATASETS
        if v not in DATASETS:
            import difflib
            hint = difflib.get_close_matches(v, list(DATASETS), n=1)
            raise ValueError("unknown dataset" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                             + f"; allowed: {', '.join(DATASETS)}")
        return v


# --- study kinds -----------------------------------------------------------------------------

class Study(Strict):
    kind: str
    title: str = ""
    question: str = ""
    introduction: str = ""             # Markdown shown at the top of the study's section
    baseline: Optional[str] = None     # label of the reference configuration (default: the first)
    model: ModelPatch = ModelPatch()
    training: TrainingPatch = TrainingPatch()
    axis: ClassVar[str] = ""           # the swept key; its values must be distinct

    def points(self) -> list[tuple[str, dict, dict]]:
        raise NotImplementedError

    def origin(self, label: str, key: str) -> tuple:
        """Where, under this study, the user set ``key`` of configuration ``label``."""
        return (self.axis,)

    @model_validator(mode="after")
    def _distinct(self):
        values = getattr(self, self.axis, []) if self.axis else []
        dup = [v for i, v in enumerate(values) if v in values[:i]]
        if dup:
            raise ValueError(f"{self.axis} lists {dup[0]!r} twice")
        labels = [label for label, _, _ in self.points()]
        if self.baseline is not None and self.baseline not in labels:
            raise ValueError(f"baseline {self.baseline!r} is not one of the configurations: "
                             + ", ".join(labels))
        return self


class DepthStudy(Study):
    layers: list[PositiveInt] = Field(min_length=1)
    axis: ClassVar[str] = "layers"
    units: PositiveInt = 128

    def points(self):
        return [(f"{n} layer{'s' * (n != 1)}", {"layers": n}, {"hidden": [self.units] * n})
                for n in self.layers]


class WidthStudy(Study):
    units: list[PositiveInt] = Field(min_length=1)
    axis: ClassVar[str] = "units"
    layers: PositiveInt = 2

    def points(self):
        return [(f"{u} units", {"units": u}, {"hidden": [u] * self.layers}) for u in self.units]


class LossStudy(Study):
    losses: list[Loss] = Field(min_length=1)
    axis: ClassVar[str] = "losses"

    def points(self):
        return [(v, {"loss": v}, {"loss": v}) for v in self.losses]


class ActivationStudy(Study):
    activations: list[Activation] = Field(min_length=1)
    axis: ClassVar[str] = "activations"

    def points(self):
        return [(v, {"activation": v}, {"activation": v}) for v in self.activations]


class BatchSizeStudy(Study):
    batch_sizes: list[PositiveInt] = Field(min_length=1)
    axis: ClassVar[str] = "batch_sizes"

    def points(self):
        return [(f"batch {b}", {"batch_size": b}, {"batch_size": b}) for b in self.batch_sizes]


class GridStudy(Study):
    """Several axes swept at once, as their product (R4: L2 x dropout x learning rate)."""
    axes: dict[str, list[Any]] = Field(min_length=1)

    @field_validator("axes")
    @classmethod
    def _known_keys(cls, axes: dict) -> dict:
        for key, values in axes.items():
            if key not in Variant.model_fields:
                import difflib
                hint = difflib.get_close_matches(key, list(Variant.model_fields), n=1)
                raise ValueError(f"unknown axis {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                                 + "; an axis is a model or training key")
            if not isinstance(values, list) or not values:
                raise ValueError(f"axis {key!r} needs a non-empty list of values")
            dup = [v for i, v in enumerate(values) if v in values[:i]]
            if dup:
                raise ValueError(f"axis {key!r} lists {dup[0]!r} twice")
            for v in values:
                try:
                    Variant.model_validate({key: v})
                except ValidationError as e:
                    err = e.errors(include_url=False)[0]
                    raise ValueError(f"axis {key!r}: {v!r}: {err['msg'][0].lower()}{err['msg'][1:]}") from None
        return axes

    def origin(self, label: str, key: str) -> tuple:
        return ("axes", key)

    def points(self):
        import itertools
        keys = list(self.axes)
        out = []
        for combo in itertools.product(*(self.axes[k] for k in keys)):
            patch = Variant.model_validate(dict(zip(keys, combo))).model_dump(exclude_unset=True)
            label = ", ".join(f"{k} {_short(patch[k])}" for k in keys)
            out.append((label, {k: patch[k] for k in keys}, patch))
        return out


def _short(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


class VariantStudy(Study):
    """Named configurations side by side; each variant holds only what differs from the base."""
    variants: dict[str, Variant] = Field(min_length=1)

    def origin(self, label: str, key: str) -> tuple:
        return ("variants", label, key)

    def points(self):
        return [(label, {}, v.model_dump(exclude_unset=True)) for label, v in self.variants.items()]


StudyKinds: dict[str, type[Study]] = {
    "depth": DepthStudy,
    "width": WidthStudy,
    "loss": LossStudy,
    "activation": ActivationStudy,
    "regularization": VariantStudy,
    "optimizer": VariantStudy,
    "batch_size": BatchSizeStudy,
    "cnn_vs_baseline": VariantStudy,
    "compare": VariantStudy,
    "grid": GridStudy,
}
