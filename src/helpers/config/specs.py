"""Declarative parameter constraints of a report: the model, training, data and report settings
every key may hold (the study kinds' own keys are in helpers.config.studies)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    create_model,
    field_validator,
    model_validator,
)

from helpers.config.errors import did_you_mean
from helpers.data.registry import DATASETS

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


def _jit_compile(v: Any) -> Any:
    if v == "auto" or isinstance(v, bool):
        return v
    raise ValueError('must be "auto", true or false')


def _steps_per_execution(v: Any) -> Any:
    if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
        return v
    raise ValueError('must be "auto" or a whole number of steps, at least 1')


JitCompile = Annotated[Any, BeforeValidator(_jit_compile)]
StepsPerExecution = Annotated[Any, BeforeValidator(_steps_per_execution)]


class TrainingSpec(Strict):
    optimizer: Optimizer
    learning_rate: float = Field(gt=0)
    batch_size: PositiveInt
    epochs: PositiveInt
    loss: Loss
    early_stopping: Optional[EarlyStopping] = None
    # How Keras executes the steps (helpers.run.training.execution): XLA-compiled, several steps per
    # call. "auto" lets the tool choose; false / 1 give Keras's plain per-step loop.
    jit_compile: JitCompile = "auto"
    steps_per_execution: StepsPerExecution = "auto"


MODEL_KEYS = tuple(ModelSpec.model_fields)
TRAINING_KEYS = tuple(TrainingSpec.model_fields)


def _partial(name: str, *models: type[BaseModel]) -> type[BaseModel]:
    """The same keys and types as ``models``, all optional: an override holds only what differs."""
    fields = {k: (Optional[f.annotation], None) for m in models for k, f in m.model_fields.items()}
    return create_model(name, __base__=Strict, **fields)


ModelPatch = _partial("ModelPatch", ModelSpec)
TrainingPatch = _partial("TrainingPatch", TrainingSpec)
Variant = _partial("Variant", ModelSpec, TrainingSpec)

# Metrics a reference study's figure may be compared with: all lie in [0, 1]. Training time is left
# out on purpose: it measures the machine, not the configuration.
REFERENCE_METRICS = ("test_accuracy", "val_accuracy", "train_accuracy", "f1_macro", "roc_auc", "auc_ovr",
                     "average_precision")


def _figure(v: Any) -> Any:
    if v is None:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError("must be a number between 0 and 1, as the reference study gives it (e.g. 0.857)")
    if not 0 <= v <= 1:
        hint = f" ({v:g} looks like a percentage: write {v / 100:g})" if 1 < v <= 100 else ""
        raise ValueError(f"must be between 0 and 1{hint}")
    return float(v)


Figure = Annotated[Optional[float], BeforeValidator(_figure)]


class Reference(Strict):
    """Figures a reference study reported for one configuration, and where they come from
    (``{test_accuracy: 0.857, source: R5}``). They are shown beside this report's numbers and never
    change what is trained: not part of any run's cache key."""
    source: str = ""   # required, checked below so that the error names the file that set the figures
    note: str = ""
    test_accuracy: Figure = None
    val_accuracy: Figure = None
    train_accuracy: Figure = None
    f1_macro: Figure = None
    roc_auc: Figure = None
    auc_ovr: Figure = None
    average_precision: Figure = None

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, v):
        if not isinstance(v, dict):
            raise ValueError("must be a mapping of figures and their source, e.g. {test_accuracy: 0.857, source: R5}")
        return v

    @model_validator(mode="after")
    def _complete(self):
        if not self.figures():
            raise ValueError(f"give at least one figure: {', '.join(REFERENCE_METRICS)}")
        if not str(self.source).strip():
            raise ValueError("give source: where the figures come from (e.g. R5)")
        return self

    def figures(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in REFERENCE_METRICS if getattr(self, k) is not None}

    def on_run(self) -> dict:
        """What a run carries (docs/records.md): the source, the note and the figures."""
        return {"source": self.source, "note": self.note, "figures": self.figures()}


# A named variant: what differs from the base, plus the reference figures it reproduces.
VariantEntry = create_model("VariantEntry", __base__=Variant, reference=(Optional[Reference], None))


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
    # Keras's backend (helpers.run.backend): part of every run key; jax needs `make setup BACKEND=jax`.
    backend: Literal["tensorflow", "jax"] = "tensorflow"
    data: DataSettings = DataSettings()
    profiles: dict[Literal["smoke", "quick", "full"], Profile]
    base: Base
    studies: dict[str, Any]
    ranking: Ranking = Ranking()  # the composite ranking across studies (helpers.analysis.ranking)

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        if v not in DATASETS:
            raise ValueError(f"unknown dataset{did_you_mean(v, DATASETS)}; allowed: {', '.join(DATASETS)}")
        return v


def seed_values(obj, first: int) -> list[int] | None:
    """``seeds`` as given, or ``repeats: n`` as first, first + 1, ..., first + n - 1."""
    if obj.seeds is not None:
        return list(obj.seeds)
    return [first + i for i in range(obj.repeats)] if obj.repeats else None
