"""The shape of a result across a study's configurations: the trend along a numeric axis, where
the best configuration sits on it, and how much a configuration overfits. Every word here is
checked against the noise floor of the records it rests on (helpers.analysis.noise): a step, a
peak or a plateau smaller than the floor is not told."""
from __future__ import annotations

import numbers

from helpers.analysis import noise
from helpers.analysis.records import best, metric
from helpers.present import format as fmt

# Only the fallback when no record says how many validation samples it was scored on; every
# comparison otherwise uses noise.floor of its own records. Kept for modules that import it.
NOISE = noise.FALLBACK
# Train - validation gaps above these are called mild / clear overfitting (and above the floor).
GAP_MILD, GAP_CLEAR = 0.02, 0.05
MORE = "set `repeats:` to train each configuration over several seeds, or use more data"


def _axis(ok: list[dict]) -> tuple[str, list] | None:
    """The one numeric key every run varies, with each run's value; None otherwise."""
    axes = [r.get("axis") or {} for r in ok]
    if not axes or any(len(a) != 1 for a in axes) or len({next(iter(a)) for a in axes}) != 1:
        return None
    key = next(iter(axes[0]))
    xs = [a[key] for a in axes]
    if not all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in xs):
        return None
    return key, xs


def shape(ys: list[float], floor: float) -> tuple[str, int | None]:
    """The shape of a series over an increasing axis, ignoring moves below ``floor``: ("flat" |
    "peak" | "plateau" | "rises" | "rises gradually" | "falls" | "mixed", index of the peak or of the
    plateau's start)."""
    if max(ys) - min(ys) < floor:
        return "flat", None
    d = [b - a for a, b in zip(ys, ys[1:])]
    top = max(range(len(ys)), key=ys.__getitem__)
    if 0 < top < len(ys) - 1 and ys[top] - ys[0] >= floor and ys[top] - ys[-1] >= floor:
        return "peak", top
    # A rise must end above its start by the floor and never drop by the floor on the way:
    # small losses that add up are a fall, not a gradual rise.
    if ys[-1] - ys[0] >= floor and all(g > -floor for g in d):
        gains = [i for i, g in enumerate(d) if g >= floor]
        if not gains:  # many small steps that add up: no clear gain for a plateau to follow
            return "rises gradually", None
        # a plateau: after the last clear gain the rest (two points at least) stays within the floor
        start = gains[-1] + 1
        if start < len(ys) - 1 and max(ys[start:]) - min(ys[start:]) < floor:
            return "plateau", start
        return "rises", None
    if ys[0] - ys[-1] >= floor and all(g < floor for g in d):
        return "falls", None
    return "mixed", None


def trend(ok: list[dict], floor: float | None = None) -> tuple[str | None, str]:
    """(shape, sentence) for a single numeric axis; shape is None when there is no trend to tell,
    "flat" when the data cannot tell one (it moves less than the noise floor). ``floor``: the
    noise floor (default: noise.floor of ``ok``)."""
    found = _axis(ok)
    if found is None:
        return None, ""
    key, xs = found
    by_x: dict = {}
    for x, r in zip(xs, ok):
        by_x.setdefault(x, []).append(metric(r, "val_accuracy"))
    xs = sorted(by_x)
    if len(xs) < 3:
        return None, ""
    floor = noise.floor(ok) if floor is None else floor
    ys = [sum(by_x[x]) / len(by_x[x]) for x in xs]
    kind, at = shape(ys, floor)
    what = f"As `{key}` increases, validation accuracy"
    if kind == "flat":
        return "flat", (f"{what} barely changes: it moves by {fmt.pp(max(ys) - min(ys))} percentage points in all, "
                        f"below the noise floor of {fmt.pp(floor)} points, so the data cannot tell whether it rises "
                        f"or falls ({MORE} to find out).")
    if kind == "peak":
        return "peak", f"{what} peaks at {key} = {fmt.compact(xs[at])} and falls on either side."
    if kind == "plateau":
        return "plateau", (f"{what} rises and then plateaus after {key} = {fmt.compact(xs[at])} "
                           f"(later changes stay within the noise floor of {fmt.pp(floor)} points).")
    if kind == "rises":
        return "rises", f"{what} rises steadily."
    if kind == "rises gradually":
        return "rises", f"{what} rises gradually, by {fmt.pp(ys[-1] - ys[0])} percentage points in all."
    if kind == "falls":
        return "falls", f"{what} falls, by {fmt.pp(ys[0] - ys[-1])} percentage points in all."
    return "mixed", f"{what} shows no simple monotonic trend."


def edge(ok: list[dict]) -> tuple[str, object, str] | None:
    """(key, value, "largest" | "smallest") when the best run sits at an end of a numeric axis."""
    found = _axis(ok) if len(ok) >= 3 else None
    if found is None:
        return None
    key, xs = found
    x = best(ok)["axis"][key]
    return (key, x, "largest") if x == max(xs) else (key, x, "smallest") if x == min(xs) else None


def overfitting(gap: float, floor: float = 0.0) -> str:
    """The verdict on the largest train–validation gap of a study; a gap within the noise floor
    is no evidence of overfitting."""
    return ("Overfitting is clear" if gap >= max(GAP_CLEAR, floor) else "Overfitting is mild"
            if gap >= max(GAP_MILD, floor) else "No configuration overfits noticeably")
