"""The shape of a result across a study's configurations: the trend along a numeric axis, where
the best configuration sits on it, and how much a configuration overfits, with the thresholds
these words use."""
from __future__ import annotations

import numbers

from helpers.analysis.records import best, metric
from helpers.present import format as fmt

# Each configuration is trained once (one seed); differences below this are
# within the run-to-run noise one would expect from a different seed.
NOISE = 0.01
# Successive gains below this count as a plateau.
PLATEAU = 0.005
# Train - validation gaps above these are called mild / clear overfitting.
GAP_MILD, GAP_CLEAR = 0.02, 0.05


def trend(ok: list[dict]) -> tuple[str | None, str]:
    """(shape, sentence) for a single numeric axis; shape is None when there is no trend to tell."""
    axes = [r.get("axis") or {} for r in ok]
    if not axes or any(len(a) != 1 for a in axes) or len({next(iter(a)) for a in axes}) != 1:
        return None, ""
    key = next(iter(axes[0]))
    xs = [a[key] for a in axes]
    if not all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in xs):
        return None, ""
    by_x: dict = {}
    for x, r in zip(xs, ok):
        by_x.setdefault(x, []).append(metric(r, "val_accuracy"))
    xs = sorted(by_x)
    if len(xs) < 3:
        return None, ""
    ys = [sum(by_x[x]) / len(by_x[x]) for x in xs]
    d = [b - a for a, b in zip(ys, ys[1:])]
    top = max(range(len(ys)), key=ys.__getitem__)
    what = f"As `{key}` increases, validation accuracy"
    if max(ys) - min(ys) < PLATEAU:
        return "flat", f"{what} barely changes (less than {fmt.pp(PLATEAU)} percentage points overall)."
    if 0 < top < len(ys) - 1 and ys[top] - ys[0] >= PLATEAU and ys[top] - ys[-1] >= PLATEAU:
        return "peak", f"{what} peaks at {key} = {fmt.compact(xs[top])} and falls on either side."
    if all(g > -PLATEAU for g in d):
        gains = [i for i, g in enumerate(d) if g >= PLATEAU]
        if not gains:  # many small steps that add up: no single step is large enough to plateau after
            return "rises", f"{what} rises gradually."
        last_gain = gains[-1]
        if last_gain + 1 < len(xs) - 1:
            return "plateau", (f"{what} rises and then plateaus after {key} = {fmt.compact(xs[last_gain + 1])} "
                               f"(later gains are below {fmt.pp(PLATEAU)} percentage points).")
        return "rises", f"{what} rises steadily."
    if all(g < PLATEAU for g in d):
        return "falls", f"{what} falls."
    return "mixed", f"{what} shows no simple monotonic trend."


def edge(ok: list[dict]) -> tuple[str, object, str] | None:
    """(key, value, "largest" | "smallest") when the best run sits at an end of a numeric axis."""
    axes = [r.get("axis") or {} for r in ok]
    if len(ok) < 3 or any(len(a) != 1 for a in axes) or len({next(iter(a)) for a in axes}) != 1:
        return None
    key = next(iter(axes[0]))
    xs = [a[key] for a in axes]
    if not all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in xs):
        return None
    x = best(ok)["axis"][key]
    return (key, x, "largest") if x == max(xs) else (key, x, "smallest") if x == min(xs) else None




def overfitting(gap: float) -> str:
    """The verdict on the largest train–validation gap of a study."""
    return ("Overfitting is clear" if gap >= GAP_CLEAR else "Overfitting is mild" if gap >= GAP_MILD
            else "No configuration overfits noticeably")
