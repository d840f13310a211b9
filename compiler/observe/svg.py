"""Our own SVG of a Drawing (for machines without Graphviz) and the self-contained HTML page around an SVG.

Layout: each item (a box, or a fused cluster with its body boxes stacked inside) sits in the layer of its
topological depth; within a layer items are ordered by the mean position of their predecessors. Text is
escaped for XML and written as ASCII (character references for the rest).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from .drawing import Box, Cluster, Drawing

CHAR_W = 6.8  # monospace advance at FONT_PX
FONT_PX = 11
LINE_H = 14
PAD = 6
GAP_X = 24
GAP_Y = 40
GAP_IN = 16  # between the boxes inside a cluster
MARGIN = 16
FILL = {"node": "#eef3fb", "input": "#e3f4e1", "output": "#fbeee3"}


def xml_text(text: str) -> str:
    """Escaped for XML/HTML text and attribute values, as ASCII."""
    return html.escape(text, quote=True).encode("ascii", "xmlcharrefreplace").decode("ascii")


@dataclass
class _Rect:
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0


def _box_size(b: Box) -> tuple[float, float]:
    lines = [b.title, *b.lines]
    return max(len(s) for s in lines) * CHAR_W + 2 * PAD, len(lines) * LINE_H + 2 * PAD


def _item_size(item: Box | Cluster) -> tuple[float, float]:
    if isinstance(item, Box):
        return _box_size(item)
    sizes = [_box_size(b) for b in item.boxes]
    w = max([w for w, _ in sizes] + [len(item.title) * CHAR_W]) + 2 * PAD
    return w, LINE_H + 2 * PAD + sum(h for _, h in sizes) + GAP_IN * (len(sizes) - 1) + PAD


def _layout(d: Drawing) -> tuple[list[_Rect], dict[str, _Rect], dict[str, int], float, float]:
    """Rectangles of the items and of every box, the item of each box, and the canvas width and height."""
    item_of: dict[str, int] = {}
    for i, item in enumerate(d.items):
        for b in [item] if isinstance(item, Box) else item.boxes:
            item_of[b.id] = i
    preds: list[list[int]] = [[] for _ in d.items]
    for a, b in d.edges:
        if item_of[a] != item_of[b]:
            preds[item_of[b]].append(item_of[a])
    depth = [0] * len(d.items)
    for i in range(len(d.items)):  # items come in topological order
        depth[i] = max((depth[p] + 1 for p in preds[i]), default=0)
    layers: dict[int, list[int]] = {}
    for i, k in enumerate(depth):
        layers.setdefault(k, []).append(i)

    rects = [_Rect(0, 0, *_item_size(item)) for item in d.items]
    top = MARGIN + (1 + len(d.summary)) * LINE_H + PAD
    y, width = top, 0.0
    rows: list[list[int]] = []
    for k in sorted(layers):
        row = sorted(
            layers[k],
            key=lambda i: (sum(rects[p].x + rects[p].w / 2 for p in preds[i]) / len(preds[i]) if preds[i] else -1, i),
        )
        x = 0.0
        for i in row:
            rects[i].x, rects[i].y = x, y
            x += rects[i].w + GAP_X
        width = max(width, x - GAP_X)
        y += max(rects[i].h for i in row) + GAP_Y
        rows.append(row)
    for row in rows:  # centre every layer on the widest one
        used = rects[row[-1]].x + rects[row[-1]].w
        for i in row:
            rects[i].x += MARGIN + (width - used) / 2

    boxes: dict[str, _Rect] = {}
    for item, r in zip(d.items, rects):
        if isinstance(item, Box):
            boxes[item.id] = r
            continue
        by = r.y + LINE_H + 2 * PAD
        for b in item.boxes:
            w, h = _box_size(b)
            boxes[b.id] = _Rect(r.x + (r.w - w) / 2, by, w, h)
            by += h + GAP_IN
    title_w = max(len(s) for s in [d.title, *d.summary]) * CHAR_W
    return rects, boxes, item_of, max(width, title_w) + 2 * MARGIN, y - GAP_Y + MARGIN


def _text(x: float, y: float, lines: list[str], bold_first: bool) -> list[str]:
    out = []
    for n, line in enumerate(lines):
        weight = ' font-weight="bold"' if bold_first and n == 0 else ""
        out.append(f'<text x="{x:.1f}" y="{y + (n + 1) * LINE_H - 3:.1f}"{weight}>{xml_text(line)}</text>')
    return out


def layout_svg(d: Drawing) -> str:
    rects, boxes, item_of, width, height = _layout(d)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="monospace" font-size="{FONT_PX}">',
        f"<title>{xml_text(d.title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="8" markerHeight="8" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>',
        '<rect width="100%" height="100%" fill="white"/>',
        *_text(MARGIN, MARGIN, [d.title, *d.summary], True),
        '<g fill="none" stroke="#555" stroke-width="1">',
    ]
    for a, b in d.edges:
        if item_of[a] == item_of[b]:  # inside a cluster: boxes are stacked in body order
            ra, rb = boxes[a], boxes[b]
            x1, y1, x2, y2 = ra.x + ra.w / 2, ra.y + ra.h, rb.x + rb.w / 2, rb.y
            if y2 - y1 > GAP_IN + 1:  # skips boxes: go round them on the right
                x1, y1, x2, y2 = ra.x + ra.w, ra.y + ra.h / 2, rb.x + rb.w, rb.y + rb.h / 2
                path = f"M{x1:.1f},{y1:.1f} C{x1 + 30:.1f},{y1:.1f} {x2 + 30:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
            else:
                path = f"M{x1:.1f},{y1:.1f} L{x2:.1f},{y2:.1f}"
        else:  # between items: leave a cluster from its bottom, enter it at its top
            ra = boxes[a] if isinstance(d.items[item_of[a]], Box) else rects[item_of[a]]
            rb = boxes[b] if isinstance(d.items[item_of[b]], Box) else rects[item_of[b]]
            x1, y1, x2, y2 = ra.x + ra.w / 2, ra.y + ra.h, rb.x + rb.w / 2, rb.y
            bend = max(GAP_Y / 2, (y2 - y1) / 3)
            path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} {x2:.1f},{y2:.1f}"
        out.append(f'<path d="{path}" marker-end="url(#arrow)"/>')
    out.append("</g>")
    for item, r in zip(d.items, rects):
        if isinstance(item, Cluster):
            out.append(f'<g id="{item.id}" class="cluster">')
            out.append(
                f'<rect x="{r.x:.1f}" y="{r.y:.1f}" width="{r.w:.1f}" height="{r.h:.1f}" rx="8" '
                'fill="#f7f9fd" stroke="#3b6fb6" stroke-dasharray="5,3"/>'
            )
            out += _text(r.x + PAD, r.y + PAD, [item.title], False)
            out += [_box_svg(b, boxes[b.id]) for b in item.boxes]
            out.append("</g>")
        else:
            out.append(_box_svg(item, r))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _box_svg(b: Box, r: _Rect) -> str:
    parts = [f'<g id="{b.id}" class="{b.kind}">']
    if b.tooltip:
        parts.append(f"<title>{xml_text(b.tooltip)}</title>")
    parts.append(
        f'<rect x="{r.x:.1f}" y="{r.y:.1f}" width="{r.w:.1f}" height="{r.h:.1f}" rx="4" '
        f'fill="{FILL[b.kind]}" stroke="#333"/>'
    )
    parts += _text(r.x + PAD, r.y + PAD, [b.title, *b.lines], True)
    parts.append("</g>")
    return "\n".join(parts)


def html_page(d: Drawing, svg: str) -> str:
    """A self-contained page: summary, the SVG inline, and the arena by offset. No scripts, no fetches."""
    svg = svg[svg.find("<svg") :]  # drop an XML declaration / doctype (from Graphviz) before inlining
    rows = "\n".join(
        f"<tr><td>{offset:,}</td><td>{size:,}</td><td>{xml_text(value)}</td></tr>" for offset, size, value in d.arena
    )
    summary = "".join(f"<li>{xml_text(s)}</li>" for s in d.summary)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{xml_text(d.title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
.graph {{ overflow: auto; border: 1px solid #ccc; }}
table {{ border-collapse: collapse; font-family: monospace; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; }}
td:last-child {{ text-align: left; }}
</style>
</head>
<body>
<h1>{xml_text(d.title)}</h1>
<ul>{summary}</ul>
<div class="graph">
{svg}</div>
<h2>Arena</h2>
<table>
<tr><th>offset</th><th>bytes</th><th>value</th></tr>
{rows}
</table>
</body>
</html>
"""
