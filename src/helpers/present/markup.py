"""HTML markup shared by every view: figures as embedded PNGs with captions, tables in labelled
wrappers, and references to them from the text.

Figures and tables carry a label and a caption but no number: ``<figure class="sb-figure"
data-label="fig:<study>:<name>">`` and ``<div class="sb-table" data-label="tab:<study>:<name>">``.
The report numbers them across the whole report while stitching (helpers.build.render.number) and
turns references in the text (``{{ref:fig:depth:curves}}``, made by ``ref`` and ``see``) into links.
"""
from __future__ import annotations

import base64
import html
import io
import re
import struct

from IPython.display import Image

from helpers.present import figures

CSS_DPI = 96  # a CSS pixel is 1/96 inch: figures are shown at the physical size they were drawn at


def _png(fig) -> tuple[bytes, int]:
    """PNG bytes and the CSS width (px) that shows them at the size the figure was drawn."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=figures.DPI)
    data = buf.getvalue()
    width = struct.unpack(">I", data[16:20])[0]  # the IHDR chunk: width, then height
    return data, round(width * CSS_DPI / figures.DPI)


def figure_html(fig, label: str, caption: str) -> str:
    """A figure as an embedded PNG with its caption (HTML; the caption is HTML too)."""
    data, width = _png(fig)
    alt = html.escape(html.unescape(_strip_tags(caption)), quote=True)
    return (f'<figure class="sb-figure" data-label="{html.escape(label, quote=True)}">'
            f'<img src="data:image/png;base64,{base64.b64encode(data).decode()}" width="{width}" alt="{alt}">'
            f"<figcaption>{caption}</figcaption></figure>")


def table_html(table: str, label: str, caption: str) -> str:
    """An HTML <table> (as pandas writes it) with a caption, in a labelled wrapper."""
    start = table.index("<table")
    end = table.index(">", start) + 1
    return (f'<div class="sb-table" data-label="{html.escape(label, quote=True)}">'
            f"{table[:end]}<caption>{caption}</caption>{table[end:]}</div>")


def _strip_tags(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)


def image(fig) -> Image:
    """A figure as an embedded PNG without a caption (for use by hand in Jupyter)."""
    return Image(data=_png(fig)[0], format="png")


def ref(*labels: str) -> str:
    """A reference to the first of ``labels`` that the report has, as the report resolves it:
    "Figure 4" linked to the figure (see helpers.build.render.number). Labels: ``fig:<study>:<name>`` for the
    figures of helpers.present.section (curves, splits, confusion, diagnostics, versus-<x>, bars-<y>,
    grid-<i>), ``tab:<study>:results`` / ``tab:<study>:grid``, ``tab:summary`` and the like."""
    return "{{ref:" + "|".join(labels) + "}}"


def see(*labels: str) -> str:
    """" (see Figure 4)" for the first of ``labels`` the report has; nothing when it has none."""
    return "{{see:" + "|".join(labels) + "}}"
