"""Rendering: the combined notebook becomes one self-contained HTML page through nbconvert and the
project's template; figures and tables are numbered across the whole report and the references in
the text become links. Users' own prose (Markdown) is rendered safely here too."""
from __future__ import annotations

import html
import re

import nbformat
import pandas as pd
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from helpers.build.state import TEMPLATES
from helpers.present.markup import table_html



def html_cell(content: str, section: str = "") -> nbformat.NotebookNode:
    """A cell whose only output is HTML: tables and headings that need ids or classes."""
    cell = new_code_cell("")
    cell.outputs = [new_output("display_data", data={"text/html": content, "text/plain": ""})]
    if section:
        cell.metadata["studybook"] = {"section": section}
    return cell


def table(df: pd.DataFrame, table_id: str, cls: str, label: str, caption: str) -> str:
    body = df.to_html(table_id=table_id, classes=cls, na_rep="—", index=False, escape=True)
    return table_html(body, label, caption)


TABLE = re.compile(r"<table\b.*?</table>", re.S)
TEXT = re.compile(r">([^<>]+)<")


def wrappable(body: str) -> str:
    """Every table's text (never its ids or classes) made to wrap where it reads well, so that a
    table fits the text column: a long name may break after an underscore (categorical_<wbr>
    crossentropy, cnn_<wbr>vs_<wbr>baseline); "0.9028 ± 0.0250" only before its ±, never between
    the ± and its number."""
    def text(m: re.Match) -> str:
        return ">" + re.sub(r"(?<=\w)_(?=\w)", "_<wbr>", m.group(1)).replace(" ± ", " ±\u00a0") + "<"
    return TABLE.sub(lambda m: TEXT.sub(text, m.group(0)), body)


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
    from helpers.present import section  # noqa: F401 - figures, words and tables
    render(new_notebook(cells=[new_markdown_cell("*warm-up*"), html_cell(table(
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
    return number(wrappable(body))
