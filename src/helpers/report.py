"""Stitching: the executed study notebooks and the generated text become one combined notebook,
rendered by nbconvert with the project's template into a single self-contained HTML file (and,
on request, a PDF of that file printed by Chromium).

Layout: title page, abstract, contents, numbered sections (Introduction when the parameters give
one, Methodology, one per study, Summary across studies, Discussion, Conclusions) and a lettered
appendix. Figures and tables are numbered across the whole report by ``number`` after rendering.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import nbformat
import pandas as pd
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from helpers import cache, crossval, cvstudy, metrics, narrate, ranking, repeats
from helpers.config import Plan
from helpers.execute import Outcome

TEMPLATES = Path(__file__).parent / "templates"
PACKAGES = ["tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas", "scikit-learn", "matplotlib",
            "seaborn", "papermill", "nbconvert", "pydantic"]
DROP_TAGS = {"header", "parameters", "injected-parameters"}
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


# ---------------------------------------------------------------- building blocks
def _html(content: str, section: str = "") -> nbformat.NotebookNode:
    """A cell whose only output is HTML: tables and headings that need ids or classes."""
    cell = new_code_cell("")
    cell.outputs = [new_output("display_data", data={"text/html": content, "text/plain": ""})]
    if section:
        cell.metadata["studybook"] = {"section": section}
    return cell


def _table(df: pd.DataFrame, table_id: str, cls: str, label: str, caption: str) -> str:
    from helpers.section import table_html
    body = df.to_html(table_id=table_id, classes=cls, na_rep="—", index=False, escape=True)
    # a line may break after the underscore of a long name (categorical_crossentropy, cnn_vs_baseline)
    body = re.sub(r"(?<=\w)_(?=\w)", "_<wbr>", body)
    return table_html(body, label, caption)


def _heading(number: int | str, title: str, anchor: str) -> str:
    return (f'<h2 class="section" id="{anchor}"><span class="secnum">{number}</span> '
            f"{html.escape(title)}</h2>")


def prose(text: str) -> str:
    """A user's Markdown as HTML. Raw HTML is escaped (a <script> shows as text and never runs),
    links keep only safe schemes, images become their alt text (nothing is fetched at view time),
    and headings start at level 3, below the report's own sections."""
    import mistune

    class Safe(mistune.HTMLRenderer):
        def image(self, text: str, url: str, title: str | None = None) -> str:
            return f'<span class="image-alt">[image: {text}]</span>'

        def link(self, text: str, url: str, title: str | None = None) -> str:
            safe = self.safe_url(url)
            return super().link(text, url, title) if safe and not safe.startswith("#harmful") else text

        def heading(self, text: str, level: int, **attrs) -> str:
            return f"<h{min(level + 2, 6)}>{text}</h{min(level + 2, 6)}>\n"

    md = mistune.create_markdown(renderer=Safe(escape=True), escape=True,
                                 plugins=["strikethrough", "table"])
    return f'<div class="prose">{md(text or "")}</div>' if (text or "").strip() else ""


def _study_cells(nb: nbformat.NotebookNode, number: int, section: str) -> list:
    """A study's executed cells, minus its header, parameters and log noise; headings numbered."""
    cells, sub = [], 0
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if DROP_TAGS & tags:
            continue
        if cell.cell_type == "markdown":
            def renumber(m):
                nonlocal sub
                sub += 1
                return f"### {number}.{sub} "
            cell.source = re.sub(r"^### ", renumber, cell.source, flags=re.M)
        if cell.cell_type == "code":
            if "remove-input" in tags:
                cell.source = ""
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            # A notebook's own error output is replaced by the report's error box.
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "error"]
        cell.metadata["studybook"] = {"section": section}
        cells.append(cell)
    return cells


def _error_box(outcome: Outcome) -> str:
    tb = re.sub(r"\x1b\[[0-9;]*m", "", outcome.traceback or "")  # ANSI colours from IPython
    return (f'<div class="study-error"><p><b>This study failed.</b> {html.escape(outcome.error or "")}</p>'
            + (f"<details><summary>Traceback</summary><pre>{html.escape(tb)}</pre></details>" if tb else "")
            + "</div>")


# ---------------------------------------------------------------- generated sections
def methodology(plan: Plan, records: list[dict], n: int = 1) -> str:
    rep = plan.report
    # A cv refit trains on train+validation: its split is not the report's.
    infos = sorted((r for r in records if r.get("data_info")), key=crossval.is_refit)
    info = infos[0]["data_info"] if infos else None
    base_m, base_t = rep.base.model.model_dump(), rep.base.training.model_dump()
    profile = rep.profiles[rep.profile]
    lines = [f"### {n}.1 Data", ""]
    if info:
        lines.append(f"Dataset `{info['dataset']}` ({info['classes']} classes, inputs of shape "
                     f"{tuple(info.get('input_shape') or info.get('shape') or ())}), read from `{info['source']}`. Preprocessing: {info['preprocessing']}. "
                     f"Split: **{info['train']:,}** training, **{info['val']:,}** validation and "
                     f"**{info['test']:,}** test samples.")
        if info.get("storage"):
            lines[-1] += f" Features are stored as {info['storage']}."
        if info.get("example"):
            lines += ["", f"A training example, decoded: *{html.escape(str(info['example']))}*"]
    else:
        lines.append(f"Dataset `{rep.dataset}` (no run finished, so split sizes are unknown).")
    how = ("the first samples of the training subsample, in their original order"
           if rep.data.validation_method == "head" else f"a stratified sample of the training subsample, seed {rep.seed}")
    lines += ["",
              f"The validation set ({rep.data.validation_split:.0%}: {how}) is carved out of the training "
              "data. The test set is used once per run, after "
              "training, for the final metrics; it never influences early stopping or the choice of a best "
              "configuration, which is always made on validation accuracy.",
              "", f"Profile **{rep.profile}**: "
              + ", ".join([f"{profile.train_samples:,} training samples" if profile.train_samples else "all training samples",
                           f"{profile.test_samples:,} test samples" if profile.test_samples else "all test samples"])
              + " (subsamples are stratified and seeded)" * bool(profile.train_samples or profile.test_samples)
              + (f", at most {profile.epochs} epoch{'s' * (profile.epochs != 1)} per run." if profile.epochs
                 else ", the configured number of epochs."),
              "", f"### {n}.2 Model and training", "",
              f"Every run starts from one base configuration and a study changes only what it studies: "
              f"{'an' if base_m.get('kind', 'mlp') == 'mlp' else 'a'} {base_m.get('kind', 'mlp').upper()} with hidden layers {base_m.get('hidden')} "
              f"({base_m.get('activation')}, initializer {base_m.get('initializer')}), "
              + ("one sigmoid output unit (two classes); " if info and info.get("classes") == 2 else "softmax output; ")
              + f"optimizer {base_t.get('optimizer')} (learning rate {base_t.get('learning_rate')}), "
              f"batch size {base_t.get('batch_size')}, up to {base_t.get('epochs')} epochs, loss "
              f"{base_t.get('loss')}; "
              + (f"early stopping on {base_t['early_stopping'].get('monitor', 'val_loss')} with patience "
                 f"{base_t['early_stopping'].get('patience', 3)}, restoring the best weights."
                 if base_t.get("early_stopping") else "no early stopping."),
              "Each study's own settings are listed at the start of its section, and every study's "
              "parameters in [Appendix C](#appendix-parameters).",
              "", f"### {n}.3 Measurements", "",
              "Per run: train, validation and test accuracy and loss (of the restored model), macro F1 and "
              + ("ROC AUC, average precision and Brier score" if info and info.get("classes") == 2 else "one-vs-rest AUC")
              + " on the test set, the test confusion matrix, the overfitting gap (train − "
              "validation accuracy), the parameter count, epochs run and best epoch, and training wall time "
              f"(fit only, on {os.cpu_count()} CPU cores). " + repeats.methodology(records, rep.seed)]
    return "\n".join(lines)


def parameters_yaml(plan: Plan) -> list[tuple[str, str]]:
    """(heading, YAML) pairs: the shared settings, then each study's merged settings."""
    rep = plan.report
    dump = lambda d: yaml.safe_dump(d, sort_keys=False, default_flow_style=None, allow_unicode=True, width=56)  # noqa: E731
    shared = {"dataset": rep.dataset, "profile": rep.profile, "seed": rep.seed,
              rep.profile: rep.profiles[rep.profile].model_dump(),
              "data": rep.data.model_dump(), "base": rep.base.model_dump(mode="json")}
    out = [("Shared settings", dump(shared))]
    for name, sp in plan.studies.items():
        entry = rep.studies.get(name) or {}
        entry = {k: v for k, v in entry.items() if k != "introduction"}
        out.append((f"{sp.title} ({name})", dump({name: entry or {"kind": sp.kind}})))
    return out


def combined(plan: Plan, outcomes: list[Outcome], date: str) -> nbformat.NotebookNode:
    rep = plan.report
    records = [r for o in outcomes for r in o.records]
    # A cross-validation fold is no configuration of its own: its study's section and the appendix show it.
    every_run, records = records, [r for r in records if not crossval.is_fold(r)]
    sections: list[tuple[str, str, str]] = []  # (number, title, anchor) for the contents
    cells = [_html('<div class="cover">'
                   f'<h1 id="title">{html.escape(rep.title)}</h1>'
                   + (f'<p class="author">{html.escape(rep.author)}</p>' if rep.author else "")
                   + (f'<p class="course">{html.escape(rep.course)}</p>' if rep.course else "")
                   + f'<p class="date">{html.escape(date)}</p></div>'),
             new_markdown_cell("## Abstract\n\n" + narrate.abstract(records) + cvstudy.abstract_note(every_run))]
    body = []
    n = 1
    if rep.introduction.strip():
        body += [_html(_heading(n, "Introduction", "introduction") + prose(rep.introduction))]
        sections.append((str(n), "Introduction", "introduction"))
        n += 1
    body += [_html(_heading(n, "Methodology", "methodology")), new_markdown_cell(methodology(plan, records, n))]
    sections.append((str(n), "Methodology", "methodology"))

    for number, outcome in enumerate(outcomes, start=n + 1):
        sp = plan.studies[outcome.name]
        anchor = f"study-{sp.name}"
        head = (f'<h2 id="{anchor}"><span class="secnum">{number}</span> {html.escape(sp.title)}</h2>'
                f'<button type="button" class="sb-toggle" data-section="{anchor}" aria-expanded="false">'
                "Show code</button>")
        if sp.question:
            head += f'<p class="question"><em>{html.escape(sp.question)}</em></p>'
        head += prose((rep.studies.get(sp.name) or {}).get("introduction", ""))
        body.append(_html(head, anchor))
        sections.append((str(number), sp.title, anchor))
        if outcome.status == "failed" and outcome.traceback:
            body.append(_html(_error_box(outcome), anchor))
        if outcome.notebook and outcome.notebook.exists():
            body += _study_cells(nbformat.read(outcome.notebook, as_version=4), number, anchor)
        elif outcome.status == "failed" and not outcome.traceback:
            body.append(_html(_error_box(outcome), anchor))
    n += len(outcomes) + 1

    summary = narrate.summary(records).rename(columns={
        "best": "best configuration (by val acc)", "val_accuracy": "val acc", "test_accuracy": "test acc",
        "f1_macro": "F1 (macro)", "params": "parameters", "seconds": "time (s)"})
    summary = summary.round({"val acc": 4, "test acc": 4, "F1 (macro)": 4, "time (s)": 1})
    summary["parameters"] = summary["parameters"].astype("Int64")
    # Folds are trained runs too: count them in "runs" though they are no configuration of their own.
    summary["runs"] = summary["study"].map(narrate.summary(every_run).set_index("study")["runs"])
    body += [_html(_heading(n, "Summary across studies", "summary")
                   + "<p>The best configuration of each study, chosen by validation accuracy; its test "
                   "accuracy is reported, never used to choose.</p>"
                   + _table(summary, "summary-table", "summary", "tab:summary",
                            "The best configuration of each study (by validation accuracy) with its test "
                            "accuracy, macro F1, size and training time; runs = successful / all"
                            + ("; a study trained over several seeds shows means over them"
                               if repeats.repeated(records) else "")
                            + ("; a cross-validation study's val acc is its mean fold score"
                               if len(every_run) > len(records) else "")
                            + ".")
                   + ranking.section_html(records, rep.ranking)),
             _html(_heading(n + 1, "Discussion", "discussion")),
             new_markdown_cell(narrate.discussion(records, links=True))]
    if rep.discussion.strip():
        body.append(_html(prose(rep.discussion)))
    body += [_html(_heading(n + 2, "Conclusions", "conclusions")), new_markdown_cell(narrate.conclusions(records))]
    sections += [(str(n), "Summary across studies", "summary"), (str(n + 1), "Discussion", "discussion"),
                 (str(n + 2), "Conclusions", "conclusions"), ("", "Appendix", "appendix")]

    runs_config, runs_metrics = appendix_frames(every_run)
    body += [_html('<h2 class="section" id="appendix">Appendix</h2>'
                   '<h3 id="appendix-every-run">A. Every run</h3>'
                   + _table(runs_config, "appendix-runs", "appendix", "tab:appendix:runs",
                            "Every run's configuration and status (epochs: epochs trained before early "
                            "stopping or the cap).")
                   + _table(runs_metrics, "appendix-metrics", "appendix", "tab:appendix:metrics",
                            "Every run's metrics: accuracy and loss of the restored model, gap = train − "
                            "validation accuracy, time = training wall time in seconds.")),
             _html('<h3 id="appendix-environment">B. Environment</h3>'
                   + _table(pd.DataFrame(list(versions().items()), columns=["package", "version"]),
                            "versions", "versions", "tab:appendix:versions",
                            "Package versions.")
                   + f"<p>Parameters: <code>{html.escape(plan.source)}</code>, profile "
                   f"<code>{html.escape(rep.profile)}</code>. Executed study notebooks are saved beside "
                   "this report.</p>"),
             _html('<h3 id="appendix-parameters">C. Parameters</h3><p>The shared settings and each study\'s '
                   "settings after merging the defaults, the study files, the report file and any "
                   "<code>--set</code> (YAML; a study's runs are these settings applied to the base).</p>"
                   + '<div class="sb-params">'
                   + "".join(f'<div><h4>{html.escape(title)}</h4><pre class="yaml">{html.escape(text)}</pre></div>'
                             for title, text in parameters_yaml(plan)) + "</div>")]

    toc = ['<nav class="contents"><h2 id="contents">Contents</h2><ol>']
    toc += [f'<li><a href="#{anchor}"><span class="secnum">{num}</span> {html.escape(title)}</a></li>'
            for num, title, anchor in sections]
    toc.append("</ol></nav>")
    cells += [_html("".join(toc)), *body]
    for i, cell in enumerate(cells):  # unique ids: two studies of one kind share their template's ids
        cell.id = f"cell-{i}"
    return new_notebook(cells=cells, metadata={"title": rep.title,
                                               "kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


def appendix_frames(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every run, one row each: its configuration (and status), and its metrics. Two tables of
    a dozen columns each read on screen and fit the width of an A4 page."""
    configs, results = [], []
    for r in records:
        m, t = r["config"]["model"], r["config"]["training"]
        reg = [f"dropout {m['dropout']}" + (" (gaussian)" if m["dropout_kind"] == "gaussian" else "")
               if m["dropout"] else "", f"L1 {m['l1']}" if m["l1"] else "", f"L2 {m['l2']}" if m["l2"] else "",
               "batch norm" if m["batch_norm"] else ""]
        arch = (f"conv {m['filters']} + " if m["kind"] == "cnn" else "") + f"dense {m['hidden']}"
        mt = r.get("metrics") or {}
        configs.append({"study": r["study"], "configuration": r["label"], "seed": r["seed"], "model": arch,
                        "activation": m["activation"], "regularization": ", ".join(x for x in reg if x) or "none",
                        "optimizer": f"{t['optimizer']} ({t['learning_rate']:g})", "batch": t["batch_size"],
                        "loss": t["loss"], metrics.TABLE_COLUMNS["epochs_run"]: mt.get("epochs_run"),
                        "status": r["status"]})
        row = {"study": r["study"], "configuration": r["label"]}
        for k in ("best_epoch", "train_accuracy", "val_accuracy", "test_accuracy", "test_loss", "f1_macro",
                  *metrics.OPTIONAL, "gap", "params", "seconds"):
            row[metrics.TABLE_COLUMNS.get(k, k)] = mt.get(k)
        results.append(row)
    config_df, result_df = pd.DataFrame(configs), pd.DataFrame(results)
    optional = [metrics.TABLE_COLUMNS[k] for k in metrics.OPTIONAL]
    result_df = result_df.drop(columns=[c for c in optional if c in result_df and result_df[c].isna().all()])
    for df in (config_df, result_df):
        for col in df.columns:
            if df[col].dtype.kind == "f":
                df[col] = df[col].round(1 if col == metrics.TABLE_COLUMNS["seconds"] else 4)
        for col in ("best epoch", "epochs", "parameters"):
            if col in df:
                df[col] = df[col].astype("Int64")
    return config_df, result_df


# ---------------------------------------------------------------- numbering and cross-references
MARKER = re.compile(r'<(figure|div) class="sb-(figure|table)" data-label="([^"]*)"')
TOKEN = re.compile(r"\{\{(ref|see):([^{}<>]+?)\}\}")
NAMES = {"figure": ("Figure", "fig", "<figcaption>"), "table": ("Table", "tab", "<caption>")}


def number(body: str) -> str:
    """Number figures and tables in document order across the whole report and resolve references.

    A figure ``<figure class="sb-figure" data-label="L">…<figcaption>`` becomes ``id="fig-N"`` with
    its caption starting "Figure N."; a table wrapper ``<div class="sb-table" data-label="L">`` with
    its ``<caption>`` becomes ``id="tab-N"`` and "Table N.". Then ``{{ref:L1|L2}}`` becomes a link
    "Figure N" to the first label that exists, and ``{{see:L1|L2}}`` becomes " (see Figure N)";
    a reference to nothing that exists leaves no link behind.
    """
    counts = {"figure": 0, "table": 0}
    labels: dict[str, tuple[str, int]] = {}
    pieces, last = [], 0
    marks = list(MARKER.finditer(body))
    for i, m in enumerate(marks):
        what = m.group(2)
        counts[what] += 1
        word, prefix, cap = NAMES[what]
        k = counts[what]
        labels.setdefault(html.unescape(m.group(3)), (what, k))
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        segment = body[m.end():end]
        j = segment.find(cap)
        if j >= 0:
            j += len(cap)
            segment = f'{segment[:j]}<span class="sb-num">{word} {k}.</span> {segment[j:]}'
        pieces += [body[last:m.start()],
                   f'<{m.group(1)} class="sb-{what}" id="{prefix}-{k}" data-label="{m.group(3)}"', segment]
        last = end
    pieces.append(body[last:])
    body = "".join(pieces)

    def link(m: re.Match) -> str:
        target = next((labels[lb] for lb in (s.strip() for s in html.unescape(m.group(2)).split("|"))
                       if lb in labels), None)
        if target is None:
            return "" if m.group(1) == "see" else '<span class="xref-missing">(not shown)</span>'
        word, prefix, _ = NAMES[target[0]]
        a = f'<a class="xref" href="#{prefix}-{target[1]}">{word} {target[1]}</a>'
        return f" (see {a})" if m.group(1) == "see" else a
    return TOKEN.sub(link, body)


# ---------------------------------------------------------------- output
def preload() -> None:
    """Import and compile what ``build`` will need (a background thread calls this while
    studies run): nbconvert with the template, Markdown and table rendering, matplotlib."""
    from helpers import section  # noqa: F401 - figure and table markup
    render(new_notebook(cells=[new_markdown_cell("*warm-up*"), _html(_table(
        pd.DataFrame({"a": [1.0]}), "warm-up", "sb", "tab:warm-up", "warm-up"))]))


def render(nb: nbformat.NotebookNode) -> str:
    """HTML: code inputs are included but hidden (a button per study shows them), prompts left out."""
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="studybook", extra_template_basedirs=[str(TEMPLATES)],
                            exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    # Each cell of a study section says so (data-section): what its "Show code" button toggles.
    where = {f"cell-id={c.id}": c.metadata["studybook"]["section"] for c in nb.cells
             if c.get("metadata", {}).get("studybook", {}).get("section")}
    body = re.sub(r'<div [^>]*?id="(cell-id=[^"]+)"[^>]*',
                  lambda m: m.group(0) + (f' data-section="{html.escape(where[m.group(1)])}"'
                                          if m.group(1) in where else ""), body)
    return number(body)


def build(plan: Plan, outcomes: list[Outcome], html_path: Path, json_path: Path) -> None:
    """Write the report's JSON and HTML; each replaces the previous one only when complete."""
    rep = plan.report
    date = str(rep.date) if rep.date else dt.date.today().isoformat()
    nb = combined(plan, outcomes, date)
    body = render(nb)
    data = {
        "title": rep.title, "author": rep.author, "course": rep.course, "date": date,
        "params_file": plan.source, "profile": rep.profile, "seed": rep.seed,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "studies": [{"name": o.name, "kind": plan.studies[o.name].kind, "title": plan.studies[o.name].title,
                     "status": o.status, "error": o.error, "seconds": round(o.seconds, 2),
                     "runs": len(o.records)} for o in outcomes],
        "runs": [{k: v for k, v in r.items() if k != "traceback"} | {"seconds": (r.get("metrics") or {}).get("seconds")}
                 for o in outcomes for r in o.records],
    }
    cache.write_atomic(json_path, json.dumps(data, indent=1, allow_nan=False))
    cache.write_atomic(html_path, body)


# ---------------------------------------------------------------- PDF
class PdfError(Exception):
    """Chromium is missing, or it did not print the report."""


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium to print with: ``explicit`` (a path or a name on PATH), else the first of
    chromium, chromium-browser, google-chrome on PATH. Raises PdfError naming what was tried."""
    if explicit:
        found = shutil.which(explicit) or (explicit if os.access(explicit, os.X_OK) and Path(explicit).is_file() else None)
        if not found:
            raise PdfError(f"--chromium {explicit}: no such executable")
        return found
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    raise PdfError("--pdf needs Chromium, and none of " + ", ".join(CHROMIUM_NAMES) + " is on PATH: install it "
                   "(Debian: apt-get install chromium) or name it with --chromium PATH")


def pdf(html_path: Path, pdf_path: Path, chromium: str, timeout: float = 300) -> None:
    """Print the HTML report to ``pdf_path`` with headless Chromium; replaced only when complete."""
    tmp = pdf_path.with_name(f".{pdf_path.name}.tmp")
    tmp.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="studybook-chromium-") as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--no-pdf-header-footer",
               f"--print-to-pdf={tmp}", Path(html_path).resolve().as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            raise PdfError(f"{chromium} did not finish printing {html_path} within {timeout:.0f} s") from None
    ok = proc.returncode == 0 and tmp.exists() and tmp.read_bytes()[:5] == b"%PDF-"
    if not ok:
        tmp.unlink(missing_ok=True)
        last = next((ln for ln in reversed(proc.stderr.splitlines()) if ln.strip()), "no output")
        raise PdfError(f"{chromium} could not print {html_path} (exit {proc.returncode}): {last}")
    os.replace(tmp, pdf_path)
