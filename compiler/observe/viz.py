"""--viz FILE: the final graph drawn with value types and where each value lives (arena offset and size).

.dot is Graphviz text written here; .svg comes from the `dot` binary where installed, else from our own
layered layout (observe/svg.py); .html is a self-contained page around the SVG. Model strings arrive
already made printable by drawing.shown and get each format's escaping here.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .. import outdir
from ..codegen.program import Program
from ..errors import MlccError
from .drawing import Box, Drawing, drawing
from .svg import html_page, layout_svg

FORMATS = (".dot", ".svg", ".html")
DOT_TIMEOUT_S = 60


def check_format(path: Path) -> str:
    """The format named by `path`'s suffix; anything but .dot, .svg, .html is a user error."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        got = f"unsupported format {suffix!r}" if suffix else "no format suffix"
        raise MlccError(f"--viz {str(path)!r}: {got}; the file name must end in .dot, .svg or .html")
    return suffix


def _dot_text(text: str) -> str:
    """A DOT quoted-string body: entities for & < > (Graphviz decodes them in labels); other printable characters
    stay UTF-8, as Graphviz 2.x garbles entities beyond U+FFFF."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _dot_label(title: str, lines: list[str]) -> str:
    return '"' + "".join(_dot_text(s) + "\\l" for s in [title, *lines]) + '"'


_DOT_STYLE = {
    "node": 'shape=box, style="rounded,filled", fillcolor="#eef3fb"',
    "input": 'shape=box, style="filled", fillcolor="#e3f4e1"',
    "output": 'shape=box, style="filled", fillcolor="#fbeee3"',
}


def render_dot(d: Drawing) -> str:
    lines = [
        "digraph mlcc {",
        f'  graph [rankdir=TB, labelloc=t, fontname="monospace", label={_dot_label(d.title, d.summary)}];',
        '  node [fontname="monospace", fontsize=10];',
    ]

    def box_line(b: Box, indent: str) -> str:
        tooltip = f', tooltip="{_dot_text(b.tooltip)}"' if b.tooltip else ""
        return f"{indent}{b.id} [label={_dot_label(b.title, b.lines)}, {_DOT_STYLE[b.kind]}{tooltip}];"

    for item in d.items:
        if isinstance(item, Box):
            lines.append(box_line(item, "  "))
            continue
        lines.append(f"  subgraph cluster_{item.id} {{")
        lines.append(f'    label="{_dot_text(item.title)}"; style="rounded,dashed"; color="#3b6fb6";')
        lines += [box_line(b, "    ") for b in item.boxes]
        lines.append("  }")
    lines += [f"  {a} -> {b};" for a, b in d.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_svg(dot_source: str) -> str | None:
    """SVG from the Graphviz `dot` binary, or None where it is not installed or fails."""
    exe = shutil.which("dot")
    if exe is None:
        return None
    try:
        proc = subprocess.run(
            [exe, "-Tsvg"], input=dot_source.encode("utf-8"), capture_output=True, timeout=DOT_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = proc.stdout.decode("utf-8", "replace").encode("ascii", "xmlcharrefreplace").decode("ascii")
    return text if proc.returncode == 0 and "<svg" in text else None  # ASCII, as our own SVG


def render(program: Program, fmt: str) -> str:
    """The drawing of `program` in `fmt` (".dot", ".svg" or ".html")."""
    d = drawing(program)
    dot_source = render_dot(d)
    if fmt == ".dot":
        return dot_source
    svg = _dot_svg(dot_source) or layout_svg(d)
    return svg if fmt == ".svg" else html_page(d, svg)


def write_viz(path: Path, program: Program) -> None:
    outdir.write(path, render(program, check_format(path)))
