"""The report's own logic on small inputs: figure and table numbering, cross-references, the
user's Markdown (escaped), the stitched layout and the --pdf checks. Fast: nothing trains, except
one tiny digits build (one run) that checks what a failed PDF print leaves behind."""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from bs4 import BeautifulSoup  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from conftest import ROOT, config, make_record, run_build  # noqa: E402
from helpers.build import pdf, render, report  # noqa: E402
from helpers.build.execute import Outcome  # noqa: E402
from helpers.config.load import load  # noqa: E402
from helpers.present import markup, section  # noqa: E402
from helpers.present.discussion import discussion  # noqa: E402
from helpers.present.findings import findings  # noqa: E402
from helpers.present.methodology import methodology  # noqa: E402
from helpers.present.overview import conclusions  # noqa: E402


def fig_marker(label: str, caption: str = "A figure.") -> str:
    return (f'<figure class="sb-figure" data-label="{label}"><img src="data:image/png;base64,AAAA">'
            f"<figcaption>{caption}</figcaption></figure>")


def tab_marker(label: str, table_id: str = "t", caption: str = "A table.") -> str:
    return markup.table_html(f'<table id="{table_id}"><tr><td>1</td></tr></table>', label, caption)


# ---------------------------------------------------------------- numbering
def test_figures_and_tables_are_numbered_in_document_order_across_the_report():
    body = "".join([fig_marker("fig:a:curves"), tab_marker("tab:a:results", "results-a"),
                    fig_marker("fig:a:splits"), "<p>next study</p>", tab_marker("tab:b:results", "results-b"),
                    fig_marker("fig:b:curves", "Curves of <b>b</b>.")])
    soup = BeautifulSoup(render.number(body), "html.parser")
    figures = soup.select("figure.sb-figure")
    assert [f["id"] for f in figures] == ["fig-1", "fig-2", "fig-3"]
    assert [f.figcaption.get_text() for f in figures] == ["Figure 1. A figure.", "Figure 2. A figure.",
                                                          "Figure 3. Curves of b."]
    tables = soup.select("div.sb-table")
    assert [t["id"] for t in tables] == ["tab-1", "tab-2"]
    # the table keeps its own id; its caption carries the number
    assert [t.table["id"] for t in tables] == ["results-a", "results-b"]
    assert [t.caption.get_text() for t in tables] == ["Table 1. A table.", "Table 2. A table."]


def test_references_become_links_to_the_numbered_element():
    body = (fig_marker("fig:a:curves") + tab_marker("tab:a:results")
            + "<p>{{ref:tab:a:results}} lists it; mild{{see:fig:a:splits|fig:a:curves}}.</p>")
    soup = BeautifulSoup(render.number(body), "html.parser")
    links = soup.select("p a.xref")
    assert [(a["href"], a.get_text()) for a in links] == [("#tab-1", "Table 1"), ("#fig-1", "Figure 1")]
    assert soup.p.get_text() == "Table 1 lists it; mild (see Figure 1)."
    for a in links:
        assert soup.find(id=a["href"][1:]) is not None


def test_a_reference_to_nothing_leaves_no_link():
    out = render.number("<p>Overfitting is mild{{see:fig:x:splits}}: {{ref:fig:x:curves}}.</p>")
    soup = BeautifulSoup(out, "html.parser")
    assert soup.find("a") is None and "{{" not in out
    assert soup.p.get_text() == "Overfitting is mild: (not shown)."


def test_references_resolve_after_the_figure_they_point_back_to():
    # a reference may come before its figure (the abstract, a contents entry): still Figure 2
    body = "<p>{{ref:fig:b:curves}}</p>" + fig_marker("fig:a:curves") + fig_marker("fig:b:curves")
    soup = BeautifulSoup(render.number(body), "html.parser")
    assert soup.p.a["href"] == "#fig-2" and soup.p.a.get_text() == "Figure 2"


def test_duplicate_labels_are_numbered_apart_and_referenced_to_the_first():
    body = fig_marker("fig:a:x") + fig_marker("fig:a:x") + "<p>{{ref:fig:a:x}}</p>"
    soup = BeautifulSoup(render.number(body), "html.parser")
    assert [f["id"] for f in soup.select("figure")] == ["fig-1", "fig-2"]
    assert soup.p.a["href"] == "#fig-1"


def test_numbering_leaves_other_html_alone():
    body = '<div class="cover"><h1>T</h1></div><table id="x"><caption>c</caption></table>'
    assert render.number(body) == body


def test_section_figure_and_table_markup():
    fig = Figure(figsize=(6.9, 3))
    fig.add_subplot().plot([1, 2], [3, 4])
    html = markup.figure_html(fig, "fig:depth:curves", "Accuracy by <b>depth</b>.")
    soup = BeautifulSoup(html, "html.parser")
    img = soup.figure.img
    assert soup.figure["data-label"] == "fig:depth:curves"
    assert img["src"].startswith("data:image/png;base64,") and img["alt"] == "Accuracy by depth."
    # shown at the size it was drawn: PNG pixels at 150 dpi, 96 CSS px per inch
    import base64
    import struct
    png = base64.b64decode(img["src"].split(",", 1)[1])
    assert int(img["width"]) == round(struct.unpack(">I", png[16:20])[0] * 96 / 150)
    assert soup.figure.figcaption.b.get_text() == "depth"
    tab = BeautifulSoup(markup.table_html('<table border="1" id="results-depth"><tr><td>1</td></tr></table>',
                                           "tab:depth:results", "Results."), "html.parser")
    assert tab.div["data-label"] == "tab:depth:results"
    assert tab.table["id"] == "results-depth" and tab.table.contents[0].name == "caption"


def test_findings_refer_to_the_study_table_and_figures():
    recs = [make_record(f"{n} layers", 0.8 + n / 100, test=0.8, train=0.9, axis={"layers": n}, baseline=n == 1,
                        params=1000 * n, seconds=n)
            for n in (1, 2, 3)]
    text = findings(recs, links=True)
    assert text.startswith("{{ref:tab:depth:results}} lists every configuration.")
    assert "{{see:fig:depth:splits|fig:depth:curves}}" in text
    assert "{{" not in findings(recs)  # without links: plain text, as before


# ---------------------------------------------------------------- the user's Markdown
def test_prose_renders_markdown_and_escapes_html():
    out = render.prose("Some **bold** and <script>window.__pwned = 1</script> <img src=x onerror=alert(1)>")
    soup = BeautifulSoup(out, "html.parser")
    assert soup.find("strong").get_text() == "bold"
    assert soup.find("script") is None and soup.find("img") is None
    assert "<script>window.__pwned = 1</script>" in soup.get_text()
    assert "&lt;script&gt;" in out


@pytest.mark.parametrize("text, forbidden", [
    ("[x](javascript:alert(1))", "javascript:"),
    ("![remote](http://example.com/a.png)", "<img"),
    ("<iframe src='http://example.com'></iframe>", "<iframe"),
    ('<a href="#nowhere">x</a>', "<a "),
])
def test_prose_fetches_nothing_and_runs_nothing(text, forbidden):
    out = render.prose(text)
    assert forbidden not in out
    assert not BeautifulSoup(out, "html.parser").select('a[href^="#"]')


def test_prose_headings_sit_below_the_report_sections_and_empty_prose_is_nothing():
    soup = BeautifulSoup(render.prose("# Why\n\ntext"), "html.parser")
    assert soup.find("h3").get_text() == "Why" and soup.find("h1") is None
    assert render.prose("") == "" and render.prose("  \n") == ""


# ---------------------------------------------------------------- the stitched report
def fake_records(plan) -> list[Outcome]:
    outcomes = []
    for name, sp in plan.studies.items():
        records = []
        for i, spec in enumerate(sp.runs):
            r = copy.deepcopy(spec)
            acc = 0.8 + 0.01 * i
            r.update(status="ok", class_names=["a", "b", "c"], confusion=[[5, 1, 0], [1, 5, 0], [0, 0, 6]],
                     metrics={"train_accuracy": acc + 0.02, "val_accuracy": acc, "test_accuracy": acc - 0.01,
                              "train_loss": 0.5, "val_loss": 0.6, "test_loss": 0.6, "f1_macro": acc, "auc_ovr": 0.9,
                              "gap": 0.02, "params": 1000 + i, "epochs_run": 2, "best_epoch": 2, "seconds": 1.0 + i},
                     history={"accuracy": [0.5, acc], "val_accuracy": [0.5, acc], "loss": [1, 0.5], "val_loss": [1, 0.6]})
            records.append(r)
        outcomes.append(Outcome(name, records=records))
    return outcomes


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    params = tmp_path_factory.mktemp("params") / "prose.yaml"
    params.write_text("title: Prose\ndataset: digits\n"
                      "introduction: 'Why **depth**? <script>window.__pwned = 1</script>'\n"
                      "discussion: My *own* view.\n"
                      "studies:\n  depth: {layers: [1, 2], introduction: Depth is **layers**.}\n"
                      "  optimizer: {}\n")
    plan = load(params, profile="smoke")
    html = render.render(report.combined(plan, fake_records(plan), "2024-01-01"))
    return plan, html, BeautifulSoup(html, "html.parser")


def test_sections_are_numbered_and_the_contents_link_to_them(rendered):
    _, _, soup = rendered
    entries = [(a.select_one(".secnum").get_text(), a["href"]) for a in soup.select("nav.contents a")]
    assert entries == [("1", "#introduction"), ("2", "#methodology"), ("3", "#study-depth"),
                       ("4", "#study-optimizer"), ("5", "#summary"), ("6", "#discussion"),
                       ("7", "#conclusions"), ("", "#appendix")]
    for _, href in entries:
        assert soup.find(id=href[1:]) is not None, href
    assert soup.find(id="study-depth").get_text(" ", strip=True).startswith("3 ")
    assert soup.find(id="2.1-Data") is not None  # methodology's subsections follow its number


def test_user_prose_is_placed_and_escaped(rendered):
    _, html, soup = rendered
    intro = soup.find(id="introduction").find_parent("div")
    assert intro.find("strong").get_text() == "depth"
    assert "<script>window.__pwned" in intro.get_text()
    assert "__pwned" not in " ".join(s.get_text() for s in soup.find_all("script"))
    study = soup.find(id="study-depth").find_parent("div")
    assert study.find("strong").get_text() == "layers"
    discussion = soup.find(id="discussion").find_parent("div", class_="jp-Cell")
    texts = [d.get_text() for d in [discussion, *discussion.find_next_siblings("div")][:3]]
    assert any("My own view." in t for t in texts)
    assert "<em>own</em>" in html


def test_tables_are_numbered_and_keep_their_ids(rendered):
    _, _, soup = rendered
    tables = soup.select("div.sb-table")
    assert [t["id"] for t in tables] == [f"tab-{i}" for i in range(1, len(tables) + 1)]
    ids = [t.table.get("id") for t in tables]
    assert ids[-5:] == ["summary-table", "ranking-table", "appendix-runs", "appendix-metrics", "versions"]
    assert all(t.caption.get_text().startswith(f"Table {i}.") for i, t in enumerate(tables, start=1))
    for a in soup.select('a[href^="#"]'):
        assert soup.find(id=a["href"][1:]) is not None, a


def test_study_buttons_and_the_parameters_appendix(rendered):
    plan, html, soup = rendered
    buttons = soup.select("button.sb-toggle")
    assert [b["data-section"] for b in buttons] == ["study-depth", "study-optimizer"]
    assert "document.addEventListener" in html and not soup.select("script[src]")
    appendix = soup.find(id="appendix-parameters").find_parent("div")
    yaml_text = " ".join(p.get_text() for p in appendix.select("pre.yaml"))
    assert "layers: [1, 2]" in yaml_text and "optimizer:" in yaml_text and "base:" in yaml_text
    assert "introduction" not in yaml_text


def test_code_inputs_are_in_the_page_but_hidden_and_the_train_cell_is_left_out():
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook
    cells = [new_code_cell("section.table(records)"), new_code_cell("records = section.train(study)")]
    cells[1].metadata["tags"] = ["remove-input"]
    for i, c in enumerate(cells):
        c.id = f"c{i}"
    nb = new_notebook(cells=report._study_cells(new_notebook(cells=cells), 2, "study-x"))
    html = render.render(nbformat.from_dict(nb))
    soup = BeautifulSoup(html, "html.parser")
    code = soup.select('[data-section="study-x"] .sb-code')
    assert len(code) == 1 and "section.table(records)" in code[0].get_text()
    assert "section.train(" not in html
    css = " ".join(s.get_text() for s in soup.find_all("style"))
    assert re.search(r"\.sb-code\s*\{\s*display:\s*none", css)


# ---------------------------------------------------------------- --pdf
def test_pdf_without_chromium_fails_before_building(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = run_build("--profile", "smoke", "--studies", "depth", "--out", tmp_path / "out", "--pdf",
                     env={"PATH": str(empty)}, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Chromium" in lines[0] and "--chromium" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


def test_find_chromium_takes_an_explicit_path(tmp_path):
    fake = tmp_path / "my-chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert pdf.find_chromium(str(fake)) == str(fake)
    with pytest.raises(pdf.PdfError, match="--chromium"):
        pdf.find_chromium(str(tmp_path / "missing"))


@pytest.fixture(scope="module")
def failed_print(tmp_path_factory, digits_report):
    """The session's digits build, copied, built again (nothing changed: no kernel starts) with --pdf
    and a "Chromium" that exits 1 without printing anything."""
    folder = tmp_path_factory.mktemp("failed-print")
    chromium = folder / "broken-chromium"
    chromium.write_text("#!/bin/sh\necho 'broken-chromium: cannot print' >&2\nexit 1\n")
    chromium.chmod(0o755)
    out = folder / "out"
    shutil.copytree(digits_report.out, out)
    proc = run_build(ROOT / "params" / "digits.yaml", "--profile", "smoke", "--out", out, "--pdf",
                     "--chromium", chromium, timeout=600)
    return proc, out


def test_a_failed_pdf_print_exits_1_with_one_error_line(failed_print):
    proc, out = failed_print
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "PDF" in errors[0] and "broken-chromium" in errors[0], proc.stderr
    assert "exit 1" in errors[0] and "cannot print" in errors[0]  # Chromium's own last word
    # the study itself succeeded (its summary row says ok): the 1 is the PDF's doing
    assert any(ln.split()[:1] == ["depth"] and " ok " in ln for ln in proc.stderr.splitlines()), proc.stderr


def test_a_failed_pdf_print_keeps_the_html(failed_print):
    proc, out = failed_print
    html = out / "digits.html"
    assert html.is_file() and "<html" in html.read_text(encoding="utf-8")[:2000].lower()
    assert BeautifulSoup(html.read_text(encoding="utf-8"), "html.parser").find(id="study-depth") is not None
    assert json.loads((out / "digits.json").read_text(encoding="utf-8"))  # and every run
    report_line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("Report: "))
    assert report_line.startswith(f"Report: {html} (") and ".pdf" not in report_line  # no PDF claimed


def test_a_failed_pdf_print_leaves_no_pdf(failed_print):
    _, out = failed_print
    assert not list(out.glob("*.pdf")) and not list(out.glob(".*pdf*"))  # nor a half-written one


# ---------------------------------------------------------------- discussion and future work
def run(study, label, val, *, x=None, gap=0.02, params=1000, seconds=1.0, **model):
    return make_record(label, val, test=val - 0.01, train=val + gap, gap=gap, study=study,
                       axis={study: x} if x is not None else {}, params=params, seconds=seconds,
                       cfg=config(hidden=(8,), **model))


def test_discussion_ranks_factors_and_says_which_are_within_noise():
    recs = [run("units", "8", 0.70, x=8, params=100, seconds=1), run("units", "64", 0.80, x=64, params=800, seconds=4),
            run("units", "256", 0.85, x=256, gap=0.09, params=3000, seconds=9),
            run("activation", "relu", 0.840), run("activation", "tanh", 0.836)]
    text = discussion(recs)
    assert "the factors order as *units* (15.0), *activation* (0.40)" in text
    assert "The *units* study shows the largest effect: from **8** to **256**" in text
    assert "In the *activation* study validation accuracy moves by less than the noise floor" in text
    assert "the largest is **256** in the *units* study" in text
    # relu lies exactly one floor (1.0 points) below the best: not within it, so it is not offered as the cheaper choice
    assert "No configuration within the noise floor (1.0 points) of it trains noticeably faster" in text
    assert "{{" not in text
    linked = discussion(recs, links=True)
    assert "{{ref:tab:summary}}" in linked and "{{see:fig:units:splits|fig:units:curves}}" in linked


def test_discussion_leaves_diverged_runs_out_of_the_ranking():
    recs = [run("optimizer", "adam", 0.85), run("optimizer", "sgd 1.0", 0.10), run("optimizer", "rmsprop", 0.84),
            run("depth", "1", 0.80), run("depth", "2", 0.84)]
    text = discussion(recs)
    assert "*depth* (4.0), *optimizer* (1.0)" in text
    assert "failed to train" in text and "**sgd 1.0** (*optimizer*)" in text
    assert isinstance(discussion([]), str)


def test_discussion_compares_regularized_with_plain_runs_of_the_same_study():
    recs = [run("regularization", "none", 0.84, gap=0.08), run("regularization", "dropout", 0.85, gap=0.02, dropout=0.3),
            run("regularization", "l2", 0.85, gap=0.03, l2=0.001)]
    assert "Regularized configurations have a median gap of 2.5 points against 8.0" in discussion(recs)


def test_future_work_extends_a_range_whose_best_is_at_its_end():
    recs = [run("units", str(u), v, x=u) for u, v in ((16, 0.80), (64, 0.83), (256, 0.86))]
    assert "extend the range above 256" in conclusions(recs)
    recs = [run("batch_size", str(b), v, x=b) for b, v in ((32, 0.86), (128, 0.83), (512, 0.80))]
    assert "extend the range below 32" in conclusions(recs)


def test_preload_warms_the_renderer_without_touching_the_output(tmp_path):
    # build_report.py calls this on a thread while kernels run; it must work on its own, in a fresh
    # interpreter, import what rendering needs and write nothing (run here in an empty folder).
    heavy = ["nbconvert.exporters.html", "matplotlib", "helpers.present.section"]
    code = textwrap.dedent(f"""
        import json, sys
        from helpers.build import render
        before = {{m: m in sys.modules for m in {heavy!r}}}
        render.preload()
        after = {{m: m in sys.modules for m in {heavy!r}}}
        print(json.dumps({{"before": before, "after": after}}))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(seen["after"].values()), seen
    # the exporter and the section helpers are preload's doing, not the import of render's module
    assert not seen["before"]["nbconvert.exporters.html"] and not seen["before"]["helpers.present.section"], seen
    assert list(tmp_path.iterdir()) == []


def test_nbformat_validates_notebooks_without_the_iri_format_checker():
    # build_report.py marks rfc3987_syntax absent to save a second per import: the notebook schema
    # must still validate (and reject) notebooks without it.
    code = ("import sys; sys.modules['rfc3987_syntax'] = None\n"
            "import nbformat, nbformat.v4 as v4\n"
            "nb = v4.new_notebook(cells=[v4.new_code_cell('1')]); nbformat.validate(nb)\n"
            "nb.cells[0]['cell_type'] = 'bogus'\n"
            "try:\n    nbformat.validate(nb)\nexcept nbformat.ValidationError:\n    print('rejected')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "rejected"


def test_a_cv_refit_neither_gives_the_split_nor_hides_the_folds_from_the_run_count(tmp_path):
    params = tmp_path / "cv.yaml"
    params.write_text("title: CV\ndataset: digits\nstudies:\n  cv: {folds: 3}\n  depth: {layers: [1]}\n")
    plan = load(params, profile="smoke")
    outcomes = fake_records(plan)
    for o in outcomes:
        for r in o.records:
            r["data_info"] = {"dataset": "digits", "classes": 3, "shape": [64], "source": "sklearn",
                              "preprocessing": "none", "train": 800, "val": 200, "test": 100}
    refit = copy.deepcopy(outcomes[0].records[0])
    refit["config"]["data"] = {k: v for k, v in refit["config"]["data"].items() if k not in ("fold", "folds")}
    refit["config"]["data"]["refit"] = True
    refit["label"], refit["data_info"] = "refit", dict(refit["data_info"], train=1000, val=0)
    outcomes[0].records.append(refit)
    text = methodology(plan, [refit, *outcomes[1].records])
    assert "**800** training, **200** validation" in text
    nb = report.combined(plan, outcomes, "2024-01-01")
    soup = BeautifulSoup(render.render(nb), "html.parser")
    rows = {tr.find_all("td")[0].get_text(): tr.find_all("td")[-1].get_text()
            for tr in soup.find(id="summary-table").find_all("tr")[1:]}
    folds = len(plan.studies["cv"].runs)
    assert rows["cv"] == f"{folds + 1}/{folds + 1}" and rows["depth"] == "1/1"


def test_methodology_says_an_mlp_and_the_summary_caption_explains_seeds_and_folds(tmp_path):
    params = tmp_path / "m.yaml"
    params.write_text("title: M\ndataset: digits\nrepeats: 2\nstudies:\n  depth: {layers: [1, 2]}\n")
    plan = load(params, profile="smoke")
    outcomes = fake_records(plan)
    for r in outcomes[0].records:
        r["metrics"]["params"] = len(r["config"]["model"]["hidden"]) * 1000  # the same over seeds, as trained
    text = methodology(plan, [r for o in outcomes for r in o.records])
    assert "an MLP with hidden layers" in text and "a MLP" not in text
    soup = BeautifulSoup(render.render(report.combined(plan, outcomes, "2024-01-01")), "html.parser")
    caption = soup.find(id="summary-table").find("caption").get_text()
    assert "a study trained over several seeds shows means over them" in caption
    assert "mean fold score" not in caption  # no cross-validation study here


def test_versus_caption_promises_no_star_without_a_baseline_and_names_what_is_not_drawn():
    def one(label, lr, status="ok"):
        return make_record(label, 0.8, test=0.8, train=0.8, study="lr", kind="learning_rate",
                           axis={"learning_rate": lr}, status=status, params=10, seconds=1.0)
    recs = [one("learning rate 10", 10.0, status="diverged"), one("learning rate 0.1", 0.1), one("learning rate 0.01", 0.01)]
    caption = section.versus(recs, x="learning_rate", logx=True).data.split("<figcaption>")[1]
    assert "star" not in caption and "not drawn: learning rate 10 (diverged)" in caption
    recs[1]["baseline"] = True
    assert "the star marks the baseline" in section.versus(recs, x="learning_rate", logx=True).data
