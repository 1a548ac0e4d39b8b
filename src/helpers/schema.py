"""Declarative parameter constraints: what every key may hold, and how a study becomes runs.

Each study kind declares only its swept values; everything else comes from ``base`` (with the
study's own ``model:`` / ``training:`` overrides). ``points()`` turns a study into
``(label, axis, patch)`` triples; the patch is merged over the study's base configuration.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal, Optional

from pydantic import (BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt, ValidationError,
                      create_model, field_validator, model_validator)

from helpers.searchspace import Param, check as check_space

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
    # truncated_normal's standard deviation (None: Keras's 0.05); R3 diverged with 1.0
    init_stddev: Optional[float] = Field(None, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    dropout_kind: Literal["dropout", "gaussian"] = "dropout"
    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)
    batch_norm: bool = False
    kernel_size: PositiveInt = 3
    pool_size: PositiveInt = 2
    conv_dropout: float = Field(0.0, ge=0, lt=1)
    # Keys checked together: an error is blamed on whichever of them the user set last.
    linked: ClassVar[dict[str, tuple[str, ...]]] = {"kind": ("filters",), "init_stddev": ("initializer",)}

    @field_validator("init_stddev")
    @classmethod
    def _stddev_needs_truncated_normal(cls, v, info):
        if v is not None and info.data.get("initializer") != "truncated_normal":
            raise ValueError("init_stddev applies only to initializer truncated_normal")
        return v

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


class RankingWeights(Strict):
    """Weights of the composite ranking's components (R1's: 0.45/0.25/0.15/0.10/0.05); a report
    sets only those it changes."""
    test_accuracy: float = Field(0.45, ge=0)
    auc: float = Field(0.25, ge=0)       # binary tasks only; elsewhere left out and stated
    gap: float = Field(0.15, ge=0)       # low train − validation gap scores high
    params: float = Field(0.10, ge=0)    # few parameters score high
    seconds: float = Field(0.05, ge=0)   # short training scores high

    @model_validator(mode="after")
    def _one_positive(self):
        if not any(getattr(self, k) > 0 for k in type(self).model_fields):
            raise ValueError("at least one ranking weight must be positive")
        return self


class Ranking(Strict):
    weights: RankingWeights = RankingWeights()
    top: NonNegativeInt = 10  # rows in the table and bars in the chart; 0 leaves the ranking out


class Repeats(Strict):
    """``seeds: [..]`` or ``repeats: n``: every configuration is trained once per seed. The report
    sets them for every study; a study's own value wins."""
    seeds: Optional[list[NonNegativeInt]] = None
    repeats: Optional[PositiveInt] = None
    # Keys checked together: an error is blamed on whichever of them the user set last.
    linked: ClassVar[dict[str, tuple[str, ...]]] = {"repeats": ("seeds",)}

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if v is not None:
            if not v:
                raise ValueError("list at least one seed (or leave seeds out)")
            dup = [s for i, s in enumerate(v) if s in v[:i]]
            if dup:
                raise ValueError(f"seeds lists {dup[0]} twice")
        return v

    @field_validator("repeats")
    @classmethod
    def _one(cls, v, info):
        if v is not None and info.data.get("seeds") is not None:
            raise ValueError("give either seeds (a list) or repeats (a count), not both")
        return v


class Report(Repeats):
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
    ranking: Ranking = Ranking()  # the composite ranking across studies (helpers.ranking)

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


def _seed_values(obj, first: int) -> list[int] | None:
    """``seeds`` as given, or ``repeats: n`` as first, first + 1, ..., first + n - 1."""
    if obj.seeds is not None:
        return list(obj.seeds)
    return [first + i for i in range(obj.repeats)] if obj.repeats else None


# --- study kinds -----------------------------------------------------------------------------

class Study(Repeats):
    kind: str
    title: str = ""
    question: str = ""
    introduction: str = ""             # Markdown shown at the top of the study's section
    baseline: Optional[str] = None     # label of the reference configuration (default: the first)
    model: ModelPatch = ModelPatch()
    training: TrainingPatch = TrainingPatch()
    axis: ClassVar[str] = ""           # the swept key; its values must be distinct

    def seed_list(self, report: "Report") -> list[int]:
        """The seeds each configuration is trained with: the study's, else the report's."""
        return _seed_values(self, report.seed) or _seed_values(report, report.seed) or [report.seed]

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


class CVStudy(VariantStudy):
    """k-fold cross-validation of named configurations on train+validation only (R1: best vs
    runner-up; R5: design selection); the selected one is retrained and tested once (helpers.crossval)."""
    folds: int = Field(5, ge=2, le=20)
    # The paired test of the best variant against each other one, over the folds.
    test: Literal["t", "wilcoxon"] = "t"

    @field_validator("seeds", "repeats")
    @classmethod
    def _folds_not_seeds(cls, v):
        if v is not None:
            raise ValueError("a cv study repeats over its folds: set folds, not seeds or repeats")
        return v

    def seed_list(self, report: "Report") -> list[int]:
        """One seed, the report's: the folds are the repeats (a report's repeats do not multiply them)."""
        return [report.seed]


class RobustnessStudy(Study):
    """R1's robustness check: the ``top`` configurations across the report's other studies (by
    validation accuracy) trained again over several seeds. Its runs are known only once those
    studies have finished (config.expand_robustness)."""
    top: PositiveInt = 3
    DEFAULT_REPEATS: ClassVar[int] = 3

    @model_validator(mode="after")
    def _several_seeds(self):
        own = _seed_values(self, 0)
        if own is not None and len(own) < 2:
            raise ValueError("a robustness study needs at least two seeds (seeds: [..] or repeats: n ≥ 2)")
        return self

    def points(self):
        return []

    def seed_list(self, report: "Report") -> list[int]:
        """Its own seeds, else the report's when there are several, else three from the report's seed."""
        theirs = _seed_values(report, report.seed)
        return (_seed_values(self, report.seed) or (theirs if theirs and len(theirs) > 1 else None)
                or [report.seed + i for i in range(self.DEFAULT_REPEATS)])


class InitializerStudy(Study):
    """R3: weight initializers side by side; ``stddev`` is truncated_normal's (R3 used 1.0)."""
    initializers: list[Initializer] = Field(min_length=1)
    stddev: Optional[float] = Field(None, gt=0)
    axis: ClassVar[str] = "initializers"

    def points(self):
        def one(v):
            std = self.stddev if v == "truncated_normal" else None
            label = f"{v} (std {std:g})" if std is not None else v
            return label, {"initializer": v}, {"initializer": v, "init_stddev": std}
        return [one(v) for v in self.initializers]


class LearningRateStudy(Study):
    """R3: one optimizer at several learning rates; a rate that diverges is a result."""
    learning_rates: list[PositiveFloat] = Field(min_length=1)
    axis: ClassVar[str] = "learning_rates"

    def points(self):
        return [(f"learning rate {v:g}", {"learning_rate": v}, {"learning_rate": v}) for v in self.learning_rates]


class SearchStudy(Study):
    """A Keras Tuner search over ``space`` (helpers.search) on validation data only; its best
    trial is retrained and tested once. The plan's runs carry the space and budget."""
    algorithm: Literal["hyperband", "random", "bayesian"] = "hyperband"
    objective: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    space: dict[str, Param] = Field(min_length=1)
    max_trials: Optional[PositiveInt] = None      # random, bayesian: required; hyperband: a cap
    max_epochs: Optional[PositiveInt] = None      # hyperband: a trial's most epochs (default: epochs)
    factor: int = Field(3, ge=2)                  # hyperband: keeps 1/factor of the trials per round
    hyperband_iterations: PositiveInt = 1
    executions_per_trial: PositiveInt = 1
    top: PositiveInt = 10                         # trials shown in the report's table

    @field_validator("space")
    @classmethod
    def _space(cls, v):
        return check_space(v)

    @model_validator(mode="after")
    def _budget(self):
        if self.algorithm != "hyperband" and self.max_trials is None:
            raise ValueError(f"algorithm {self.algorithm} needs max_trials (how many configurations to try)")
        return self

    def points(self):
        return [("best trial", {}, {})]

    def settings(self, epochs: int, cap: int | None) -> dict:
        """What every run of the study carries: the space, algorithm and budget, with hyperband's
        max_epochs capped like epochs by the profile."""
        out = self.model_dump(include={"algorithm", "objective", "max_trials", "factor",
                                       "hyperband_iterations", "executions_per_trial", "top"})
        out["space"] = {k: p.model_dump(exclude_defaults=True) for k, p in self.space.items()}
        out["max_epochs"] = min(self.max_epochs or epochs, cap or epochs)
        return out


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
    "robustness": RobustnessStudy,
    "cv": CVStudy,
    "initializer": InitializerStudy,
    "learning_rate": LearningRateStudy,
    "search": SearchStudy,
}
