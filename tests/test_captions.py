"""What a results table says it measured (issue 12, item 8), and the markup that lets a wide table
fit its column and the PDF's contents carry page numbers (item 10). Fast: nothing trains."""
from __future__ import annotations

import copy

from bs4 import BeautifulSoup

from conftest import config, make_record
from helpers.build import pdf, render
from helpers.present import section, tables


def _stopping(monitor: str = "val_loss") -> dict:
    cfg = config()
    cfg["training"]["early_stopping"] = {"monitor": monitor, "patience": 3}
    return cfg


def _table(records) -> tuple[str, list[str], dict[str, list[str]]]:
    """The caption, the column names and each column's cells of a study's results table."""
    soup = BeautifulSoup(section.table(records).data, "html.parser")
    caption = soup.find("caption").get_text(" ", strip=True)
    head = [th.get_text(strip=True) for th in soup.find("thead").find("tr").find_all("th")][1:]
    rows = [[td.get_text(strip=True) for td in tr.find_all("td")] for tr in soup.find("tbody").find_all("tr")]
    return caption, head, {name: [row[i] for row in rows] for i, name in enumerate(head)}


def test_without_early_stopping_metrics_are_last_epoch_and_said_so():
    plain = [make_record(f"{n} layers", 0.85 + n / 100, axis={"layers": n}, best_epoch=4) for n in (1, 2)]
    caption, head, cells = _table(plain)
    assert "best epoch" not in head and "best-epoch" not in caption and "restored" not in caption
    assert "last epoch" in caption and "no early stopping" in caption
    assert cells[tables.TABLE_COLUMNS["best_epoch"]] == ["last epoch", "last epoch"]  # not epoch 4: that was not measured

    stopped = [make_record(f"{n} layers", 0.85 + n / 100, axis={"layers": n}, best_epoch=n + 5, cfg=_stopping())
               for n in (1, 2)]
    caption, head, cells = _table(stopped)
    assert "early stopping restored" in caption and "lowest validation loss" in caption and "last epoch" not in caption
    assert cells[tables.TABLE_COLUMNS["best_epoch"]] == ["restored epoch 6", "restored epoch 7"]


def test_a_study_with_and_without_early_stopping_says_so_per_row():
    rows = [make_record("stopped", 0.9, cfg=_stopping("val_accuracy"), best_epoch=3), make_record("fixed", 0.88)]
    caption, _, cells = _table(rows)
    assert "restored epoch k where early stopping" in caption and "last epoch where there was no" in caption
    assert cells[tables.TABLE_COLUMNS["best_epoch"]] == ["restored epoch 3", "last epoch"]
    assert "highest validation accuracy" in tables.measured(rows[:1])


def test_repeated_seeds_name_the_restored_epochs_of_each_configuration():
    runs = [make_record(label, 0.85 + i / 100 + s / 1000, seed=s, cfg=_stopping() if label == "A" else config(),
                        best_epoch=s + 2) for i, label in enumerate("AB") for s in (1, 2, 3)]
    caption, head, cells = _table(runs)
    assert "over 3 seeds" in caption and "restored (best-epoch)" not in caption
    assert head.index(tables.TABLE_COLUMNS["best_epoch"]) == head.index("status") - 1
    assert cells[tables.TABLE_COLUMNS["best_epoch"]] == ["restored epochs 3–5", "last epoch"]


def test_a_failed_run_measured_nothing_and_the_appendix_says_what_each_run_measured():
    failed = make_record("x", status="failed", cfg=_stopping())
    assert tables.weights(failed) is None
    diverged_early = make_record("nan", 0.1, status="diverged", cfg=_stopping(), best_epoch=0)
    assert tables.weights(diverged_early) == "restored epoch 1"  # Keras keeps the first epoch's weights
    _, metrics = tables.appendix_frames([make_record("a", 0.9), make_record("b", 0.9, cfg=_stopping()), failed])
    assert metrics[tables.TABLE_COLUMNS["best_epoch"]].tolist()[:2] == ["last epoch", "restored epoch 8"]
    assert "best epoch" not in metrics


def test_table_text_wraps_where_it_reads_well_and_ids_stay_intact():
    body = ('<p>keep_this</p><table id="results-cnn_vs_baseline" class="results"><tr>'
            '<th>categorical_crossentropy</th><td>0.9028 ± 0.0250</td><td>[0.84, 0.97]</td></tr></table>')
    out = render.wrappable(body)
    assert 'id="results-cnn_vs_baseline"' in out and "<p>keep_this</p>" in out  # ids and prose untouched
    assert "categorical_<wbr>crossentropy" in out
    assert "0.9028 ±\u00a00.0250" in out  # may break before the ±, never between it and its number
    assert render.wrappable(out.replace("<wbr>", "")) == out  # applying it twice changes nothing more


NAV = ('<h1>Title</h1><nav class="contents"><h2 id="contents">Contents</h2><ol>'
       '<li><a href="#methodology"><span class="secnum">1</span> Methodology</a></li>'
       '<li><a href="#study-cnn_vs_baseline"><span class="secnum">2</span> CNN vs dense baseline</a></li>'
       '<li><a href="#appendix"><span class="secnum"></span> Appendix</a></li></ol></nav>'
       '<p><a href="#methodology">see 1</a></p>')


def test_the_printed_contents_carry_page_numbers_and_nothing_else_changes():
    assert pdf.contents_anchors(NAV) == ["methodology", "study-cnn_vs_baseline", "appendix"]
    out = pdf.with_page_numbers(NAV, {"methodology": 3, "study-cnn_vs_baseline": 5, "tab-1": 5})
    soup = BeautifulSoup(out, "html.parser")
    entries = {a["href"]: (a.find(class_="sb-page").get_text() if a.find(class_="sb-page") else None)
               for a in soup.select("nav.contents a")}
    assert entries == {"#methodology": "3", "#study-cnn_vs_baseline": "5", "#appendix": None}
    assert soup.select_one("p a").get_text() == "see 1" and len(soup.select(".sb-page")) == 2  # only the list
    assert pdf.with_page_numbers(NAV, {}) == NAV


def test_page_numbers_are_read_from_the_pdfs_named_destinations():
    # The shape Chromium writes: plain objects, a page tree two levels deep, a /Dests dictionary.
    objects = {1: "<</Type /Catalog /Pages 2 0 R /Dests 9 0 R>>",
               2: "<</Type /Pages /Count 3 /Kids [3 0 R 6 0 R]>>",
               3: "<</Type /Pages /Count 2 /Kids [4 0 R 5 0 R] /Parent 2 0 R>>",
               4: "<</Type /Page /Parent 3 0 R>>", 5: "<</Type /Page /Parent 3 0 R>>",
               6: "<</Type /Page /Parent 2 0 R>>",
               9: "<</methodology [5 0 R /XYZ 3.75 800 0]\n/study-cnn_vs_baseline [6 0 R /XYZ 3.75 800 0]\n"
                  "/2.1-Train,-val#20acc [4 0 R /XYZ 0 0 0]>>"}
    data = b"%PDF-1.4\n" + b"".join(f"{n} 0 obj\n{body}\nendobj\n".encode() for n, body in objects.items())
    assert pdf._read_dests(data) == {"methodology": 2, "study-cnn_vs_baseline": 3, "2.1-Train,-val acc": 1}
    assert pdf._read_dests(b"%PDF-1.4 nothing here") == {}


def test_the_html_report_itself_has_no_page_numbers():
    html = render.render(copy.deepcopy(render.new_notebook(cells=[render.html_cell(NAV)])))
    assert "sb-page" not in BeautifulSoup(html, "html.parser").select_one("nav.contents").decode()
