"""What a study notebook calls: train its runs, then show them. Each function returns an object
Jupyter displays (Markdown, HTML or a PNG image), so notebook cells stay one line each."""
from __future__ import annotations

import base64
import html
import io

from IPython.display import HTML, Image, Markdown

from helpers import metrics, narrate, plots, training


def train(study: str, runs: list[dict] | None = None, *, params_file: str | None = None,
          profile: str = "smoke", results_path: str | None = None, events_path: str | None = None,
          threads: int | None = None, cache_dir: str | None = None, force: bool = False) -> list[dict]:
    """Train the study's runs (all runs go through training.run_all) and save their records."""
    if not runs:  # opened by hand in Jupyter: take the study from the parameter files
        from helpers import config
        plan = config.load(params_file or config.PARAMS / "report.yaml", profile=profile, studies=[study])
        runs = plan.studies[study].runs
    records = training.run_all(runs, events_path=events_path, threads=threads, cache_dir=cache_dir, force=force)
    if results_path:
        training.save(records, results_path)
    return records


def image(fig) -> Image:
    """A figure as an embedded PNG: no backend state, and the report file carries the pixels."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return Image(data=buf.getvalue(), format="png")


def design(records: list[dict]) -> Markdown:
    return Markdown(narrate.design(records))


def table(records: list[dict]) -> HTML:
    study = records[0]["study"] if records else "study"
    return HTML(metrics.table(records).to_html(table_id=f"results-{study}", classes="results",
                                               na_rep="—", escape=True))


def failures(records: list[dict]) -> HTML:
    """Failed runs, with their errors, shown in the section instead of stopping the study."""
    failed = [r for r in records if r.get("status") != "ok"]
    if not failed:
        return HTML("")
    items = "".join(f"<li><b>{html.escape(r['label'])}</b>: <code>{html.escape(r.get('error') or '')}</code>"
                    f"<pre>{html.escape(r.get('traceback') or '')}</pre></li>" for r in failed)
    return HTML(f'<div class="study-error"><p><b>{len(failed)} of {len(records)} runs failed.</b></p>'
                f"<ul>{items}</ul></div>")


def curves(records: list[dict]) -> Image:
    return image(plots.learning_curves(records))


def versus(records: list[dict], x: str, *, logx: bool = False, xlabel: str | None = None) -> Image:
    return image(plots.versus(metrics.frame(records), x=x, logx=logx, xlabel=xlabel))


def bars(records: list[dict], y: str = "test_accuracy") -> Image:
    return image(plots.bars(metrics.frame(records), y=y))


def splits(records: list[dict]) -> Image:
    return image(plots.accuracy_splits(metrics.frame(records)))


def confusion(records: list[dict]) -> Image:
    return image(plots.confusion_matrices(records))


def diagnostics(records: list[dict]) -> HTML:
    """Binary tasks: ROC, precision-recall and reliability curves of the best configuration
    (chosen by validation accuracy); nothing for multi-class studies."""
    best = narrate.best(records)
    if not best or not best.get("curves"):
        return HTML("")
    return HTML("<h4>Best configuration: ROC, precision–recall and calibration</h4>"
                + _img(plots.binary_diagnostics(best)))


def grid(records: list[dict]) -> HTML:
    """A grid's validation accuracy pivoted by its axes; a heatmap for each two-axis slice."""
    axes = list(records[0].get("axis", {})) if records else []
    frame = metrics.frame(records)
    if len(axes) < 2 or frame.empty or "val_accuracy" not in frame:
        return HTML("")
    ok = frame[frame["status"] == "ok"]
    pivot = ok.pivot_table(index=axes[0], columns=axes[1:], values="val_accuracy", aggfunc="mean").round(4)
    parts = ["<h4>Validation accuracy by axis</h4>", pivot.to_html(classes="results pivot", na_rep="—")]
    slices = [(None, ok)] if len(axes) == 2 else list(ok.groupby(axes[2:]))
    for key, part in slices:
        title = None if key is None else ", ".join(f"{a} {v}" for a, v in zip(axes[2:], key if isinstance(key, tuple) else (key,)))
        parts.append(_img(plots.heatmap(part, x=axes[1], y=axes[0], title=title and f"Validation accuracy ({title})")))
    return HTML("".join(parts))


def _img(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}" alt="figure">'


def findings(records: list[dict]) -> Markdown:
    return Markdown("**Findings.** " + narrate.findings(records))
