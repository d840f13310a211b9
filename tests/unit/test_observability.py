"""--dump-ir and --viz: numbered IR files after every pass, graph drawings (.dot, .svg, .html) with fused
clusters and arena offsets, on every light_* model and on a model whose every name is hostile."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_hostile_names import HOSTILE, INVALID_UTF8, PLACEHOLDER
from test_hostile_names import build as hostile_model

import mlcc
from mlcc.codegen.program import build_program
from mlcc.context import PassContext
from mlcc.importer.onnx import import_onnx
from mlcc.ir.graph import Graph
from mlcc.ir.printer import print_graph
from mlcc.observe.drawing import Box, Cluster, drawing, shown
from mlcc.observe.dump_ir import IrDumper
from mlcc.observe.svg import _layout, layout_svg
from mlcc.observe.viz import render
from mlcc.pipeline import passes_for, run_pipeline

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
MODELS = sorted(p.stem for p in LIGHT.glob("light_*.onnx"))
SVG = "{http://www.w3.org/2000/svg}"
PRINTED_LINE = re.compile(r"^  %(\S+|\"(?:[^\"\\]|\\.)*\"): .* = (const .*|[A-Za-z]+\(.*)$")
NO_DOT = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")


def final_graph(model, opt_level: int = 2) -> Graph:
    """What the driver hands to codegen: the imported graph after the target's pipeline."""
    return run_pipeline(import_onnx(model), "c", PassContext(opt_level=opt_level))


def fused_nodes(graph: Graph) -> list:
    return [n for n in graph.nodes if (n.op, n.domain) == ("Fused", "mlcc")]


def box_count(graph: Graph) -> int:
    """Boxes in a drawing: inputs, outputs, and every node (a fused node's body nodes each)."""
    fused = {id(n) for n in fused_nodes(graph)}
    nodes = sum(len(n.attrs["body"]) if id(n) in fused else 1 for n in graph.nodes)
    return len(graph.inputs) + len(graph.outputs) + nodes


def check_printed(text: str, graph: Graph | None = None) -> None:
    """`text` has the printer's shape: a signature line, one line per constant and node, a closing brace."""
    lines = text.splitlines()
    assert text.endswith("\n") and lines[0].startswith("graph(") and lines[-1] == "}"
    for line in lines[1:-1]:
        assert PRINTED_LINE.match(line), line[:200]
    if graph is not None:
        assert len(lines) == 2 + len(graph.constants()) + len(graph.nodes)


def dot_outside_strings(text: str) -> tuple[str, list[str]]:
    """DOT text split into what lies outside double-quoted strings and the strings' bodies (a lexer's view)."""
    outside, strings, i = [], [], 0
    while i < len(text):
        if text[i] != '"':
            outside.append(text[i])
            i += 1
            continue
        j = i + 1
        while text[j] != '"':
            assert text[j] != "\n", "newline inside a DOT string"
            j += 2 if text[j] == "\\" else 1
        strings.append(text[i + 1 : j])
        i = j + 1
    return "".join(outside), strings


def check_dot(text: str, boxes: int, clusters: int) -> None:
    """Well-formed DOT as far as a lexer can tell (Graphviz itself checks it where installed)."""
    assert all(ch.isprintable() for ch in text.replace("\n", ""))  # no control, bidi or surrogate characters
    outside, _ = dot_outside_strings(text)
    assert re.fullmatch(r"[A-Za-z0-9_ \n\[\]{}=;,>#.-]*", outside), "unexpected characters outside strings"
    assert outside.count("{") == outside.count("}") and text.startswith("digraph mlcc {")
    assert len(re.findall(r"^ +[ino][0-9_]+ \[label=", text, re.M)) == boxes
    assert text.count("subgraph cluster_") == clusters
    if shutil.which("dot"):
        proc = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True)
        assert proc.returncode == 0, proc.stderr


def check_svg(text: str, boxes: int, clusters: int) -> ET.Element:
    root = ET.fromstring(text[text.find("<svg") :])
    assert root.tag == SVG + "svg"
    if shutil.which("dot") is None:  # our own layout: one <g> per box and per cluster
        kinds = [g.get("class") for g in root.iter(SVG + "g")]
        assert sum(k in ("node", "input", "output") for k in kinds) == boxes
        assert kinds.count("cluster") == clusters
    return root


def all_text(root: ET.Element) -> str:
    return "\n".join(t for e in root.iter() for t in (e.text, e.tail) if t)


@pytest.mark.parametrize("name", MODELS)
def test_dump_ir_and_viz_on_light_models(name, tmp_path):
    path = LIGHT / f"{name}.onnx"
    graph = final_graph(path)
    boxes = box_count(graph)
    clusters = len(fused_nodes(graph))

    mlcc.compile(path, out_dir=tmp_path / "out", build=False, dump_ir=tmp_path / "ir", viz=tmp_path / "g.svg")
    names = [f"{i:02d}-{p}.txt" for i, p in enumerate(["import"] + [p for p, _ in passes_for("c", 2)])]
    assert sorted(os.listdir(tmp_path / "ir")) == names
    texts = [(tmp_path / "ir" / n).read_text() for n in names]
    for text in texts:
        check_printed(text)
    assert texts[0] == print_graph(import_onnx(path))
    check_printed(texts[-1], graph)
    assert texts[-1] == print_graph(graph)

    root = check_svg((tmp_path / "g.svg").read_text(), boxes, clusters)
    assert "arena @" in all_text(root)

    mlcc.compile(path, out_dir=tmp_path / "out", build=False, viz=tmp_path / "g.dot")
    check_dot((tmp_path / "g.dot").read_text(), boxes, clusters)
    assert "arena @" in (tmp_path / "g.dot").read_text()

    mlcc.compile(path, out_dir=tmp_path / "out", build=False, viz=tmp_path / "g.html")
    page = (tmp_path / "g.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    check_svg(page[page.find("<svg") : page.find("</svg>") + 6], boxes, clusters)


def fusable_model() -> onnx.ModelProto:
    """conv -> (tanh, mul, add, relu) -> (neg, abs) and a maxpool: two fused chains at -O2."""
    x, y, g = "x", "y", "g"
    nodes = [
        helper.make_node("Conv", [x, "W"], ["a"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Tanh", ["a"], ["b"], name="tanh"),
        helper.make_node("Mul", ["a", "b"], ["c"], name="mul"),
        helper.make_node("Add", ["c", "K"], ["d"], name="add"),
        helper.make_node("Relu", ["d"], ["e"], name="relu"),
        helper.make_node("Neg", ["e"], ["f"], name="neg"),
        helper.make_node("MaxPool", ["e"], [g], name="pool", kernel_shape=[2, 2]),
        helper.make_node("Abs", ["f"], [y], name="abs"),
    ]
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.standard_normal((1, 4, 1, 1)).astype(np.float32), "K"),
    ]
    graph = helper.make_graph(
        nodes,
        "fusable",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 2, 8, 8])],
        [
            helper.make_tensor_value_info(y, TensorProto.FLOAT, None),
            helper.make_tensor_value_info(g, TensorProto.FLOAT, None),
        ],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_fused_nodes_are_drawn_as_clusters_of_their_body():
    graph = final_graph(fusable_model())
    fused = fused_nodes(graph)
    if not fused:
        pytest.skip("the -O2 pipeline does not fuse elementwise chains yet")
    program = build_program(graph)
    d = drawing(program)
    clusters = [item for item in d.items if isinstance(item, Cluster)]
    titles = [[f"{b.domain}.{b.op}" if b.domain else b.op for b in n.attrs["body"]] for n in fused]
    assert [[b.title for b in c.boxes] for c in clusters] == titles
    assert all(c.title.startswith("fused kernel fused_") for c in clusters)
    relu = clusters[0].boxes[-1]
    assert relu.lines[:3] == ["relu", "e: float32[1,4,8,8]", relu.lines[2]]
    assert relu.lines[2].startswith("  arena @")  # the fused kernel's output lives in the arena
    assert clusters[0].boxes[0].lines[2] == "  in kernel"  # an intermediate lives in registers
    ids = {b.id: b.title for c in clusters for b in c.boxes} | {b.id: b.title for b in d.items if isinstance(b, Box)}
    edges = {(ids[a], ids[b]) for a, b in d.edges}
    conv = "mlcc.PackedConv"  # the layout pass packed its weights
    assert {(conv, "Tanh"), (conv, "Mul"), ("Tanh", "Mul"), ("Relu", "Neg"), ("Relu", "MaxPool")} <= edges
    dot = render(program, ".dot")
    assert all(f"subgraph cluster_{c.id} {{" in dot for c in clusters)
    svg = ET.fromstring(render(program, ".svg")) if shutil.which("dot") is None else None
    if svg is not None:
        assert len(svg.findall(f".//{SVG}g[@class='cluster']")) == len(fused)


def overlaps(a, b) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


@pytest.mark.parametrize("name", ["light_inception_v1", "light_densenet121"])
def test_own_svg_layout_has_no_overlapping_boxes(name):
    d = drawing(build_program(final_graph(LIGHT / f"{name}.onnx")))
    rects, _, _, width, height = _layout(d)
    for i, a in enumerate(rects):
        assert 0 <= a.x and a.x + a.w <= width and 0 <= a.y and a.y + a.h <= height
        assert not any(overlaps(a, b) for b in rects[i + 1 :])
    ET.fromstring(layout_svg(d))


def hostile_path(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.onnx"
    path.write_bytes(hostile_model(HOSTILE).SerializeToString().replace(PLACEHOLDER, INVALID_UTF8))
    return path


def test_hostile_names_are_escaped_in_every_format(tmp_path):
    path = hostile_path(tmp_path)
    mlcc.compile(path, out_dir=tmp_path / "out", build=False, dump_ir=tmp_path / "ir", viz=tmp_path / "g.html")
    mlcc.compile(path, out_dir=tmp_path / "out", build=False, viz=tmp_path / "g.svg")
    mlcc.compile(path, out_dir=tmp_path / "out", build=False, viz=tmp_path / "g.dot")
    graph = final_graph(onnx.load(path))
    for suffix in ("dot", "svg", "html"):
        raw = (tmp_path / f"g.{suffix}").read_bytes()
        raw.decode("utf-8")  # non-UTF-8 bytes never arrive raw
        assert suffix == "dot" or raw.isascii(), suffix  # SVG and HTML spell the rest as character references
        for needle in (b"<evil.h>", b"\n#include", INVALID_UTF8, b"\xe2\x80\xae", b"x" * 300):
            assert needle not in raw, (suffix, needle)

    # Each name reads back exactly as `shown` displays it once the format's escaping is undone.
    inp = graph.inputs[0].name
    assert shown(inp) == HOSTILE[0] + "#0" and "\\x" in shown(graph.outputs[1].name)
    svg_root = check_svg((tmp_path / "g.svg").read_text(), box_count(graph), len(fused_nodes(graph)))
    html = (tmp_path / "g.html").read_text()
    html_root = ET.fromstring(html[html.find("<svg") : html.find("</svg>") + 6])
    for root in (svg_root, html_root):
        text = all_text(root)
        for v in (inp, *[o.name for o in graph.outputs]):
            assert shown(v) in text
        assert shown(HOSTILE[2]) in text  # "line\\nbreak\\r\\n#include <evil.h>\\n" spelled out
        assert "\\u202e" in text and "\\xff\\xfe\\x80\\xc3(\\x80ab" in text  # bidi override, non-UTF-8 bytes
    _, strings = dot_outside_strings((tmp_path / "g.dot").read_text())
    labels = "\n".join(strings)
    assert "#include &lt;evil.h&gt;" in labels and '\\"' in labels and "中文 🙂 \\\\u202e" in labels
    check_dot((tmp_path / "g.dot").read_text(), box_count(graph), len(fused_nodes(graph)))

    for f in (tmp_path / "ir").iterdir():  # dump files: named after passes, printed text stays line-per-node
        assert re.fullmatch(r"[0-9]{2}-[a-z_]+\.txt", f.name)
        check_printed(f.read_text())
    check_printed(sorted((tmp_path / "ir").iterdir())[-1].read_text(), graph)


def test_dump_file_names_come_from_pass_names_only(tmp_path):
    graph = import_onnx(fusable_model())
    dumper = IrDumper(tmp_path / "a" / "b")
    assert dumper.write("import", graph).name == "00-import.txt"
    assert dumper.write("../../etc/passwd\n", graph).name == "01-etc_passwd.txt"
    assert dumper.write("...", graph).name == "02-pass.txt"
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == [
        "00-import.txt",
        "01-etc_passwd.txt",
        "02-pass.txt",
    ]


def test_stale_dumps_are_replaced_and_other_files_kept(tmp_path):
    ir = tmp_path / "ir"
    ir.mkdir()
    (ir / "17-old_pass.txt").write_text("stale")
    (ir / "notes.txt").write_text("mine")
    mlcc.compile(fusable_model(), out_dir=tmp_path / "out", build=False, dump_ir=ir)
    assert not (ir / "17-old_pass.txt").exists() and (ir / "notes.txt").read_text() == "mine"
    assert (ir / "00-import.txt").is_file()


def test_dump_ir_and_viz_do_not_change_generated_code(tmp_path):
    model = fusable_model()
    mlcc.compile(model, out_dir=tmp_path / "plain", build=False)
    mlcc.compile(
        model,
        out_dir=tmp_path / "seen",
        build=False,
        dump_ir=tmp_path / "seen" / "ir",
        viz=tmp_path / "seen" / "g.html",
    )
    for name in ("model.c", "model.h", "weights.S"):
        assert (tmp_path / "plain" / name).read_bytes() == (tmp_path / "seen" / name).read_bytes(), name


def fake_dot(tmp_path: Path, script: str, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dot").write_text("#!/bin/sh\n" + script)
    (bin_dir / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_svg_comes_from_graphviz_when_installed(tmp_path, monkeypatch):
    fake_dot(
        tmp_path,
        'cat > /dev/null\necho \'<?xml version="1.0"?><!DOCTYPE svg><svg xmlns="http://www.w3.org/2000/svg"><g id="graphviz"/></svg>\'\n',
        monkeypatch,
    )
    program = build_program(final_graph(fusable_model()))
    assert render(program, ".svg").startswith("<?xml") and 'id="graphviz"' in render(program, ".svg")
    page = render(program, ".html")
    assert 'id="graphviz"' in page and "<?xml" not in page and "<!DOCTYPE svg" not in page


def test_failing_graphviz_falls_back_to_own_layout(tmp_path, monkeypatch):
    fake_dot(tmp_path, "exit 1\n", monkeypatch)
    svg = render(build_program(final_graph(fusable_model())), ".svg")
    assert ET.fromstring(svg).find(f"{SVG}g") is not None and "graphviz" not in svg


@NO_DOT
def test_real_graphviz_renders_hostile_dot(tmp_path):
    mlcc.compile(hostile_path(tmp_path), out_dir=tmp_path / "out", build=False, viz=tmp_path / "g.svg")
    root = ET.fromstring((tmp_path / "g.svg").read_text())
    assert shown(HOSTILE[2]) in all_text(root)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlcc.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("viz", ["g.png", "g", "g.svg.txt"])
def test_cli_bad_viz_suffix_is_a_user_error(tmp_path, viz):
    r = cli(str(LIGHT / "light_squeezenet.onnx"), "--no-build", "-o", "out", "--viz", viz, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith(f"mlcc: error: --viz '{viz}': ") and ".dot, .svg or .html" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()


def test_cli_dump_ir_inside_output_and_verbose_timings(tmp_path):
    model = str(LIGHT / "light_squeezenet.onnx")
    r = cli(model, "--no-build", "-o", "out", "--dump-ir", "out/ir", "--viz", "out/graph.html", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "ir" / "00-import.txt").is_file() and (tmp_path / "out" / "graph.html").is_file()
    assert "pass " not in r.stdout and "ir dumps: out/ir" in r.stdout and len(r.stdout.splitlines()) <= 7
    r = cli(model, "--no-build", "-o", "out", "-v", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name, _ in passes_for("c", 2):
        assert re.search(rf"^  pass {name} +[0-9.]+ ms  [0-9]+ nodes$", r.stdout, re.M), name


def test_cli_dump_ir_onto_a_file_is_a_user_error(tmp_path):
    (tmp_path / "ir").write_text("a file")
    r = cli(str(LIGHT / "light_squeezenet.onnx"), "--no-build", "-o", "out", "--dump-ir", "ir", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("mlcc: error: ") and "Traceback" not in r.stderr
