"""Study kinds' parameters: what each kind sweeps, and how a study becomes run specs.

Each study kind declares only its swept values; everything else comes from ``base`` (with the
study's own ``model:`` / ``training:`` overrides). ``points()`` turns a study into
``(label, axis, patch)`` triples; the patch is merged over the study's base configuration, and
``finish`` turns the configurations into the plan's runs (cross-validation: one per fold). Which
kind uses which class is declared once, in helpers.config.kinds.
"""
from __future__ import annotations

import itertools
from typing import Any, ClassVar, Literal, Optional

from pydantic import Field, PositiveFloat, PositiveInt, ValidationError, field_validator, model_validator

from helpers.config.errors import did_you_mean
from helpers.config.space import Param, check as check_space
from helpers.config.specs import (
    REFERENCE_METRICS,
    Activation,
    Initializer,
    Loss,
    ModelPatch,
    Reference,
    Repeats,
    Report,
    TrainingPatch,
    Variant,
    VariantEntry,
    seed_values,
)


class Study(Repeats):
    kind: str
    title: str = ""
    question: str = ""
    introduction: str = ""             # Markdown shown at the top of the study's section
    baseline: Optional[str] = None     # label of the reference configuration (default: the first)
    model: ModelPatch = ModelPatch()
    training: TrainingPatch = TrainingPatch()
    # The reference study's figures per configuration: {label: {test_accuracy: 0.857, source: R5}};
    # the plan checks the labels (helpers.config.plan) and puts each on its configuration's runs.
    reference: Optional[dict[str, Reference]] = None
    axis: ClassVar[str] = ""           # the swept key; its values must be distinct

    @field_validator("reference", mode="before")
    @classmethod
    def _by_label(cls, v):
        flat = [k for k in (v or {}) if k in REFERENCE_METRICS + ("source", "note")] if isinstance(v, dict) else []
        if flat:
            raise ValueError(f"a study's reference maps each configuration's label to its figures, e.g. "
                             f"reference: {{\"batch 32\": {{test_accuracy: 0.857, source: R5}}}}; {flat[0]!r} is no label")
        return v

    def references(self) -> dict[str, tuple[Reference, tuple]]:
        """label -> (its reference, where under the study the user gave it)."""
        return {label: (ref, ("reference", label)) for label, ref in (self.reference or {}).items()}

    def seed_list(self, report: "Report") -> list[int]:
        """The seeds each configuration is trained with: the study's, else the report's."""
        return seed_values(self, report.seed) or seed_values(report, report.seed) or [report.seed]

    def points(self) -> list[tuple[str, dict, dict]]:
        raise NotImplementedError

    def finish(self, runs: list[dict], epochs_cap: int | None) -> list[dict]:
        """The plan's runs, from one run per configuration and seed (default: those)."""
        return runs

    def options(self, report: "Report") -> dict:
        """Settings a later phase needs (robustness: which configurations, which seeds)."""
        return {}

    def expected_runs(self, runs: list[dict], report: "Report") -> int:
        """How many runs the study will train or reuse (its progress total)."""
        return len(runs)

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
                raise ValueError(f"unknown axis {key!r}{did_you_mean(key, Variant.model_fields)}; "
                                 "an axis is a model or training key")
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
    variants: dict[str, VariantEntry] = Field(min_length=1)

    def origin(self, label: str, key: str) -> tuple:
        return ("variants", label, key)

    def points(self):
        return [(label, {}, v.model_dump(exclude_unset=True, exclude={"reference"}))
                for label, v in self.variants.items()]

    def references(self) -> dict[str, tuple[Reference, tuple]]:
        """The study's ``reference`` mapping and each variant's own ``reference``."""
        own = {label: (v.reference, ("variants", label, "reference")) for label, v in self.variants.items()
               if v.reference is not None}
        both = next((label for label in own if label in (self.reference or {})), None)
        if both is not None:
            raise ValueError(f"the reference of {both!r} is given twice: under reference and under "
                             "its variant; keep one")
        return {**super().references(), **own}


class CVStudy(VariantStudy):
    """k-fold cross-validation of named configurations on train+validation only (R1: best vs
    runner-up; R5: design selection); the selected one is retrained and tested once (helpers.run.crossval)."""
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

    def finish(self, runs: list[dict], epochs_cap: int | None) -> list[dict]:
        """Each configuration's run becomes ``folds`` runs, one per fold (numbered from 1). The axis
        names the variant, the fold and the paired test the section reports (how runs are shown,
        not what they compute: not part of the cache key). The refit follows in training."""
        return [{**r, "label": f"{r['label']} · fold {i}",
                 "axis": {**(r.get("axis") or {}), "variant": r["label"], "fold": i, "test": self.test},
                 "config": {**r["config"], "data": dict(r["config"]["data"], fold=i, folds=self.folds)}}
                for r in runs for i in range(1, self.folds + 1)]

    def expected_runs(self, runs: list[dict], report: "Report") -> int:
        return len(runs) + 1  # the selected configuration is retrained after its folds


class RobustnessStudy(Study):
    """R1's robustness check: the ``top`` configurations across the report's other studies (by
    validation accuracy) trained again over several seeds. Its runs are known only once those
    studies have finished (helpers.config.plan.expand_robustness)."""
    top: PositiveInt = 3
    DEFAULT_REPEATS: ClassVar[int] = 3

    @model_validator(mode="after")
    def _several_seeds(self):
        own = seed_values(self, 0)
        if own is not None and len(own) < 2:
            raise ValueError("a robustness study needs at least two seeds (seeds: [..] or repeats: n ≥ 2)")
        return self

    def points(self):
        return []

    def options(self, report: "Report") -> dict:
        return {"top": self.top, "seeds": self.seed_list(report)}

    def expected_runs(self, runs: list[dict], report: "Report") -> int:
        return self.top * len(self.seed_list(report))

    def seed_list(self, report: "Report") -> list[int]:
        """Its own seeds, else the report's when there are several, else three from the report's seed."""
        theirs = seed_values(report, report.seed)
        return (seed_values(self, report.seed) or (theirs if theirs and len(theirs) > 1 else None)
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
    """A Keras Tuner search over ``space`` (helpers.run.search) on validation data only; its best
    trial is retrained and tested once. The plan's runs carry the space and budget."""
    algorithm: Literal["hyperband", "random", "bayesian"] = "hyperband"
    objective: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    space: dict[str, Param] = Field(min_length=1)
    max_trials: Optional[PositiveInt] = None      # random, bayesian: required; hyperband: a cap
    max_epochs: Optional[PositiveInt] = None      # hyperband: a trial's most epochs (default: epochs)
    factor: int = Field(3, ge=2)                  # hyperband: keeps 1/factor of the trials per round
    hyperband_iterations: PositiveInt = 1
    executions_per_trial: PositiveInt = 1
    concurrency: PositiveInt = 1                  # trials trained at once, as Dask tasks (helpers.run.search)
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

    def finish(self, runs: list[dict], epochs_cap: int | None) -> list[dict]:
        """The tuner's space and budget travel with the runs (helpers.run.search)."""
        return [dict(r, search=self.settings(r["config"]["training"]["epochs"], epochs_cap)) for r in runs]

    def settings(self, epochs: int, cap: int | None) -> dict:
        """What every run of the study carries: the space, algorithm and budget, with hyperband's
        max_epochs capped like epochs by the profile."""
        out = self.model_dump(include={"algorithm", "objective", "max_trials", "factor",
                                       "hyperband_iterations", "executions_per_trial", "concurrency", "top"})
        out["space"] = {k: p.model_dump(exclude_defaults=True) for k, p in self.space.items()}
        out["max_epochs"] = min(self.max_epochs or epochs, cap or epochs)
        return out
