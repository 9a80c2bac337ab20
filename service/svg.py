"""Inline SVG heatmaps for the web UI: rects and text, a colour-blind-safe sequential palette, a legend.

Built with ElementTree, so the output is always well-formed XML (it is inlined in HTML and also served as
``image/svg+xml``). Colours are given as presentation attributes, never ``style=``, so the page's Content
Security Policy can forbid inline styles. Every cell is an SVG ``<a>`` with a ``<title>`` tooltip and an
``aria-label``; cells with nothing behind them are drawn hatched-grey but still link (to an empty list), so
that every cell of the matrix is reachable.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

SVG_NS = "http://www.w3.org/2000/svg"

#: Five steps of viridis (dark = nothing covered, yellow = everything covered), with the text colour that
#: keeps a contrast ratio of at least 4.5:1 on each.
PALETTE = (
    ("#440154", "#ffffff"),
    ("#3b528b", "#ffffff"),
    ("#21918c", "#111111"),
    ("#5ec962", "#111111"),
    ("#fde725", "#111111"),
)
BIN_LABELS = ("0%", "1–39%", "40–69%", "70–99%", "100%")
LEGEND_STEP = 82
EMPTY_FILL, EMPTY_TEXT = "#f3f3f3", "#555555"

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
CELL_W, CELL_H, GAP = 96, 50, 3
CHAR_W = 6.9  # average advance of a 13px sans-serif character, for sizing label margins


@dataclass
class Cell:
    share: float | None  # covered / threats, or None when there is nothing in the cell
    text: str  # the big number in the cell
    subtext: str  # the small line under it
    tooltip: str  # <title> and aria-label
    href: str


def bin_of(share: float | None) -> int | None:
    """The palette step of a coverage share; None for an empty cell."""
    if share is None:
        return None
    if share <= 0:
        return 0
    if share >= 1:
        return 4
    return 1 if share < 0.4 else 2 if share < 0.7 else 3


def _el(parent: ET.Element | None, tag: str, text: str | None = None, **attrs) -> ET.Element:
    attrs = {k.rstrip("_").replace("__", ":").replace("_", "-"): str(v) for k, v in attrs.items() if v is not None}
    el = ET.Element(tag, attrs) if parent is None else ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _wrap(label: str, width: int) -> list[str]:
    """Split a label into at most two lines of about ``width`` characters."""
    if len(label) <= width or " " not in label:
        return [label]
    words, first = label.split(), ""
    while words and len(first) + len(words[0]) + (1 if first else 0) <= width:
        first = (first + " " + words.pop(0)).strip()
    if not first:
        first = words.pop(0)
    return [first, " ".join(words)] if words else [first]


def heatmap(*, ident: str, title: str, description: str, row_title: str, col_title: str,
            rows: list[tuple[str, str]], cols: list[tuple[str, str]],
            cells: dict[tuple[str, str], Cell]) -> str:
    """An SVG heatmap. ``rows`` and ``cols`` are (key, label) pairs; ``cells`` maps (row key, col key) to a Cell."""
    label_w = int(max([len(lbl) for _, lbl in rows] + [len(row_title)]) * CHAR_W) + 18
    col_lines = [_wrap(lbl, 13) for _, lbl in cols]
    head_h = 28 + 17 * max(len(lines) for lines in col_lines)
    grid_w = len(cols) * (CELL_W + GAP)
    grid_h = len(rows) * (CELL_H + GAP)
    legend_h = 58
    width = max(label_w + grid_w + 4, 6 * LEGEND_STEP + 40)
    height = head_h + grid_h + legend_h
    svg = _el(None, "svg", xmlns=SVG_NS, viewBox=f"0 0 {width} {height}", width=width, height=height,
              role="group", font_family=FONT, font_size=13, class_="heatmap", id=ident,
              aria_labelledby=f"{ident}-title {ident}-desc")
    _el(svg, "title", title, id=f"{ident}-title")
    _el(svg, "desc", description, id=f"{ident}-desc")
    defs = _el(svg, "defs")
    pattern = _el(defs, "pattern", id=f"{ident}-hatch", width=8, height=8, patternUnits="userSpaceOnUse",
                  patternTransform="rotate(45)")
    _el(pattern, "rect", width=8, height=8, fill=EMPTY_FILL)
    _el(pattern, "line", x1=0, y1=0, x2=0, y2=8, stroke="#d4d4d4", stroke_width=3)

    # axis titles and column headers
    _el(svg, "text", col_title, x=label_w + grid_w / 2, y=16, text_anchor="middle", font_weight="600",
        fill="#222222")
    _el(svg, "text", row_title, x=label_w - 12, y=head_h - 8, text_anchor="end", font_weight="600",
        fill="#222222")
    for i, lines in enumerate(col_lines):
        x = label_w + i * (CELL_W + GAP) + CELL_W / 2
        for j, line in enumerate(lines):
            y = head_h - 8 - 17 * (len(lines) - 1 - j)
            _el(svg, "text", line, x=x, y=y, text_anchor="middle", fill="#222222", class_="col-label")

    for r, (rkey, rlabel) in enumerate(rows):
        y0 = head_h + r * (CELL_H + GAP)
        _el(svg, "text", rlabel, x=label_w - 12, y=y0 + CELL_H / 2 + 5, text_anchor="end", fill="#222222",
            class_="row-label")
        for c, (ckey, _) in enumerate(cols):
            cell = cells[(rkey, ckey)]
            x0 = label_w + c * (CELL_W + GAP)
            step = bin_of(cell.share)
            fill, ink = (f"url(#{ident}-hatch)", EMPTY_TEXT) if step is None else PALETTE[step]
            link = _el(svg, "a", href=cell.href, class_="cell", aria_label=cell.tooltip,
                       data_row=rkey, data_col=ckey, data_step="empty" if step is None else step)
            _el(link, "title", cell.tooltip)
            _el(link, "rect", x=x0, y=y0, width=CELL_W, height=CELL_H, rx=3, fill=fill,
                stroke="#bbbbbb" if step is None else "none")
            _el(link, "text", cell.text, x=x0 + CELL_W / 2, y=y0 + 23, text_anchor="middle", fill=ink,
                font_size=17, font_weight="700", pointer_events="none")
            _el(link, "text", cell.subtext, x=x0 + CELL_W / 2, y=y0 + 41, text_anchor="middle", fill=ink,
                font_size=11.5, pointer_events="none")

    # legend: one swatch per palette step, then the empty swatch
    lx = max(4, label_w + grid_w - 6 * LEGEND_STEP)
    ly = head_h + grid_h + 14
    _el(svg, "text", "Share of threat classes covered by at least one defense", x=lx, y=ly + 4,
        fill="#222222", font_size=12)
    legend = _el(svg, "g", class_="legend", transform=f"translate({lx},{ly + 14})")
    for i, ((fill, _), text) in enumerate(zip(PALETTE, BIN_LABELS)):
        _el(legend, "rect", x=i * LEGEND_STEP, y=0, width=20, height=16, rx=2, fill=fill)
        _el(legend, "text", text, x=i * LEGEND_STEP + 24, y=12.5, font_size=12, fill="#222222")
    _el(legend, "rect", x=5 * LEGEND_STEP, y=0, width=20, height=16, rx=2, fill=f"url(#{ident}-hatch)",
        stroke="#bbbbbb")
    _el(legend, "text", "empty", x=5 * LEGEND_STEP + 24, y=12.5, font_size=12, fill="#222222")
    return ET.tostring(svg, encoding="unicode")
