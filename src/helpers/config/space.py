"""A search study's space, declared in YAML and checked before anything trains (no TensorFlow here).

Each key of ``space`` is a model or training key (``dropout``, ``l2``, ``learning_rate``, ...) or
one of two architecture keys: ``layers`` (the number of hidden layers) and ``units`` (units per
hidden layer, searched separately for every layer, as in R4). A key holds either a range
(``min``/``max``, optional ``step``, ``sampling: log``) or ``values`` (a list of choices).
helpers.run.search turns it into Keras Tuner hyperparameters and each trial into a configuration.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, TypeAdapter, ValidationError, model_validator

from helpers.config.errors import did_you_mean
from helpers.config.specs import ModelSpec, TrainingSpec, Variant

# Keys searched as whole numbers, and the keys whose range is continuous; the others take values only.
INTS = ("layers", "units", "batch_size", "kernel_size", "pool_size")
FLOATS = ("dropout", "conv_dropout", "l1", "l2", "learning_rate", "init_stddev")
# hidden is layers × units; epochs belong to the algorithm's budget; the rest are not hyperparameters.
NOT_SEARCHED = ("hidden", "epochs", "early_stopping", "kind", "filters")


class Param(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: Optional[Union[StrictInt, float]] = None  # an int stays an int; "1e-3" reads as 0.001
    max: Optional[Union[StrictInt, float]] = None
    step: Optional[float] = Field(None, gt=0)
    sampling: Literal["linear", "log"] = "linear"
    values: Optional[list[Union[StrictBool, StrictInt, float, str]]] = Field(None, min_length=1)

    @model_validator(mode="after")
    def _range_or_values(self):
        ranged = self.min is not None or self.max is not None
        if self.values is not None:
            if ranged:
                raise ValueError("give either values (a list of choices) or min and max (a range), not both")
            if self.step is not None or self.sampling != "linear":
                raise ValueError("step and sampling apply to a range (min and max), not to values")
            dup = [v for i, v in enumerate(self.values) if v in self.values[:i]]
            if dup:
                raise ValueError(f"values lists {dup[0]!r} twice")
            return self
        if self.min is None or self.max is None:
            raise ValueError("give min and max (a range) or values (a list of choices)")
        if self.min >= self.max:
            raise ValueError(f"min ({self.min:g}) must be less than max ({self.max:g})")
        if self.sampling == "log" and self.min <= 0:
            raise ValueError(f"log sampling needs min > 0 (got {self.min:g})")
        return self


def allowed_keys() -> list[str]:
    return ["layers", "units", *(k for k in Variant.model_fields if k not in NOT_SEARCHED)]


def _valid(key: str, value):
    """``value`` as the schema reads it for ``key`` (``"1e-3"`` -> 0.001), or a ValueError."""
    if key == "layers":
        if isinstance(value, bool) or not float(value).is_integer() or value < 0:
            raise ValueError("must be a whole number ≥ 0")
        return int(value)
    # The field with its constraints (dropout < 1, learning_rate > 0, ...), not just its type.
    field = {**ModelSpec.model_fields, **TrainingSpec.model_fields}["hidden" if key == "units" else key]
    try:
        out = TypeAdapter(Annotated[field.annotation, field]).validate_python([value] if key == "units" else value)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        msg = err["msg"].replace("Input should be", "must be").replace("Value error, ", "")
        raise ValueError(msg[0].lower() + msg[1:]) from None
    return out[0] if key == "units" else out


def check(space: dict[str, Param]) -> dict[str, Param]:
    """Every key known and every bound or choice a valid value of its key; ranges of whole-number
    keys hold whole numbers. Returns the space with values as the schema reads them."""
    allowed = allowed_keys()
    out = {}
    for key, p in space.items():
        if key not in allowed:
            why = " (hidden is searched as layers and units)" if key == "hidden" else ""
            raise ValueError(f"unknown hyperparameter {key!r}" + (did_you_mean(key, allowed) or why)
                             + f"; allowed: {', '.join(allowed)}")
        if p.values is None and key not in INTS + FLOATS:
            raise ValueError(f"{key}: takes values (a list of choices), not a range")
        fields = {"values": [_checked(key, "values", v) for v in p.values]} if p.values is not None else {
            "min": _checked(key, "min", p.min), "max": _checked(key, "max", p.max)}
        if key in INTS and p.values is None:
            step = p.step if p.step is not None else 1
            if not float(step).is_integer():
                raise ValueError(f"{key}: step = {step:g}: must be a whole number")
            fields["step"] = int(step)
        out[key] = p.model_copy(update=fields)
    return out


def _checked(key: str, what: str, value):
    try:
        return _valid(key, value)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{key}: {what} = {value!r}: {e}") from None


def shown_value(v) -> str:
    """A searched value as tables, labels and findings show it: 3 significant digits, lists bare."""
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, list):
        return "[" + ", ".join(map(str, v)) + "]"
    return str(v)
