"""What changed since the previous build, shown two ways from one comparison (made by
helpers.build.history.diff): the report's box after the abstract, and the terminal table of
``build_report.py --compare``. A configuration's validation accuracy is only called a move beyond
the noise floor the comparison carries; the sentence that says so names that floor."""
from __future__ import annotations

import html

from helpers.present import format as fmt

TITLE = "Changes since the previous build"


def _when(iso: str | None) -> str:
    """A build's UTC time as the box says it: 2026-12-01 00:45 UTC."""
    return f"{iso[:10]} {iso[11:16]} UTC" if iso else "an unknown time"


def _run(study: str, run_id: str) -> str:
    return f"{study}: {run_id}"


def _after(old: float, new: float) -> str:
    return f"{fmt.acc(new)} ({'+' if new > old else ''}{fmt.signed_pp(new - old)} points)"


def _move(old: float, new: float) -> str:
    return f"{fmt.acc(old)} → {_after(old, new)}"


def moves_sentence(d: dict) -> str:
    """The one sentence on validation accuracy, true whatever moved."""
    floor = fmt.pp(d["floor"])
    if not d["compared"]:
        return "No configuration with a validation accuracy is in both builds, so none is compared."
    if not d["moves"]:
        return (f"No configuration's validation accuracy moved by more than the noise floor ({floor} points); "
                f"{d['compared']} configurations are in both builds.")
    which = f"all {d['compared']}" if len(d["moves"]) == d["compared"] else f"{len(d['moves'])} of the {d['compared']}"
    return f"Validation accuracy moved by more than the noise floor ({floor} points) for {which} configurations in both builds:"


def _items(d: dict, markdown) -> list[str]:
    """The box's list items, HTML; a kind of change only when there is one."""
    e = lambda text: html.escape(text, quote=False)  # noqa: E731  text, never an attribute
    items = []
    if d["parameters"]:
        items.append("Parameters changed (as <code>--set</code> paths): " + "; ".join(
            f"<code>{e(path)}</code>: {e(fmt.compact(a))} → {e(fmt.compact(b))}" for path, a, b in d["parameters"]) + ".")
    for what, studies in (("added", d["studies_added"]), ("removed", d["studies_removed"])):
        if studies:
            items.append(f"Studies {what}: " + ", ".join(f"<em>{e(s)}</em>" for s in studies) + ".")
    for what, runs in (("added", d["added"]), ("removed", d["removed"])):
        if runs:
            items.append(f"Runs {what} ({len(runs)}): " + ", ".join(e(_run(s, i)) for s, i, _ in runs) + ".")
    moves = "".join(f"<li>{e(_run(s, label))}: {e(_move(a, b))}</li>" for s, label, a, b in d["moves"])
    items.append(e(moves_sentence(d)) + (f"<ul>{moves}</ul>" if moves else ""))
    if d["findings"]:
        items.append("Findings reworded: " + ", ".join(f"<em>{e(s)}</em>" for s, _, _ in d["findings"]) + "."
                     + "".join(f"<details><summary>{e(s)}: the previous wording</summary>{markdown(old)}</details>"
                               for s, old, _ in d["findings"]))
    return items


def box(d: dict, markdown=html.escape) -> str:
    """The report's box (HTML); ``markdown`` renders a previous wording of findings (Markdown)."""
    return (f'<div class="sb-changes" id="changes"><p class="title"><b>{TITLE}</b></p>'
            f"<p>Compared with the previous build ({_when(d.get('previous_time'))}):</p><ul>"
            + "".join(f"<li>{item}</li>" for item in _items(d, markdown)) + "</ul></div>")


def rows(d: dict) -> list[tuple[str, str, str, str]]:
    """The comparison as (change, what, before, after) rows."""
    acc = lambda v: "—" if v is None else fmt.acc(v)  # noqa: E731
    out = [("parameter", path, fmt.compact(a), fmt.compact(b)) for path, a, b in d["parameters"]]
    out += [("study added", s, "—", "ran") for s in d["studies_added"]]
    out += [("study removed", s, "ran", "—") for s in d["studies_removed"]]
    out += [("run added", _run(s, i), "—", acc(v)) for s, i, v in d["added"]]
    out += [("run removed", _run(s, i), acc(v), "—") for s, i, v in d["removed"]]
    out += [("val accuracy", _run(s, label), fmt.acc(a), _after(a, b)) for s, label, a, b in d["moves"]]
    out += [("findings", s, "reworded", "") for s, _, _ in d["findings"]]
    return out


def text_table(d: dict) -> str:
    """``--compare``'s output: a heading, the rows aligned in columns, and the noise-floor sentence."""
    table = [("change", "what", "before", "after")] + rows(d)
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    # not "since the previous build": A and B may be any two kept builds, in either order
    head = (f"Changes from build {d['previous']} ({_when(d['previous_time'])}) "
            f"to build {d['current']} ({_when(d['current_time'])})")
    return "\n".join([head, "", *lines, "", moves_sentence(d).rstrip(":") + ("." if d["moves"] else "")])
