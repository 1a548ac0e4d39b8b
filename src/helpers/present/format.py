"""Numbers as the report writes them, in one place: accuracies, percentage points, p-values,
counts, signed coefficients and configuration values. Every sentence, caption and table cell that
shows one of these goes through here, so a p-value or a point reads the same in every section."""
from __future__ import annotations

import math

P_FLOOR = 0.001  # p-values below this print as "< 0.001": more digits would claim a precision no test here has


def acc(v: float) -> str:
    """An accuracy (or AUC, or a mean of them): 0.8765."""
    return f"{v:.4f}"


def pp(diff: float) -> str:
    """The size of a difference of two accuracies in percentage points: 1–2 decimals, no sign."""
    points = abs(diff) * 100
    return f"{points:.2f}" if points < 1 else f"{points:.1f}"


def signed_pp(diff: float) -> str:
    """A difference in percentage points with its sign: −0.84."""
    return ("−" if diff < 0 else "") + pp(diff)


def points(diff: float) -> float:
    """A difference of two accuracies as a number of percentage points for a table cell."""
    return round(diff * 100, 2)


def p(value: float | None) -> str:
    """A p-value: "0.012", "< 0.001", or "—" when no test was made."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"< {P_FLOOR:g}" if value < P_FLOOR else f"{value:.3f}"


def p_is(value: float, name: str = "Holm-adjusted p") -> str:
    """'Holm-adjusted p = 0.012' or 'Holm-adjusted p < 0.001'."""
    text = p(value)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def count(v) -> str:
    """A whole number with thousands separators: 118,282."""
    return f"{int(v):,}"


def signed(v: float) -> str:
    """A coefficient with a true minus sign: −0.52."""
    return f"{v:.2f}".replace("-", "−")


def compact(v) -> str:
    """A configuration value as the design lists it: 0.001, [128, 64], yes, none, {optimizer: sgd}."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if v is None:
        return "none"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(compact(x) for x in v) + "]" if v else "none"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {compact(x)}" for k, x in v.items()) + "}"
    return str(v)
