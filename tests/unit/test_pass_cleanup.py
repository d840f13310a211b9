"""Clean-up passes as before/expected IR: algebraic simplification and common-subexpression elimination.

Every case also runs the graph before and after the pass through the ops' numpy references on the same
random inputs and requires equal outputs (NaN where NaN; x + 0 may turn -0.0 into +0.0, which compares equal).
"""

from __future__ import annotations

import json
import warnings

import ml_dtypes
import numpy as np
import onnx
import onnx.parser
import pytest
from models.test_light_models import LIGHT, dummy_input
from models.test_light_models import MODELS as LIGHT_MODELS
from models.test_light_models import RTOL as LIGHT_RTOL
from onnx import TensorProto, helper, numpy_helper

from helpers import assert_close, run_mlcc, run_ort
from mlcc import pipeline
from mlcc.importer.onnx import import_onnx
from mlcc.ir.dtypes import ALL, FLOAT32, STRING
from mlcc.ir.graph import Graph, Node, Value
from mlcc.ir.printer import print_graph
from mlcc.ir.verify import verify
from mlcc.ops.registry import infer_node, lookup
from mlcc.passes.cse import attr_key, eliminate_common_subexpressions
from mlcc.passes.dce import eliminate_dead_code
from mlcc.passes.fold import fold_constants
from mlcc.passes.legalize_types import legalize_types
from mlcc.passes.simplify import exact_cast, simplify

# Nodes after fold, simplify, CSE, legalize_types and DCE (after the mandatory passes alone: alexnet 24,
# densenet121 668, inception_v1 143, inception_v2 371, resnet50 176, shufflenet 203, squeezenet 66, vgg19 46,
# zfnet512 22). Their weights are constant fills, so CSE also merges convolutions with equal inputs.
LIGHT_NODES_AFTER = {
    "bvlc_alexnet": 22,
    "densenet121": 668,
    "inception_v1": 138,
    "inception_v2": 342,
    "resnet50": 176,
    "shufflenet": 203,
    "squeezenet": 65,
    "vgg19": 44,
    "zfnet512": 22,
}
HEADER = '<ir_version: 8, opset_import: ["" : 17]>\n'


def parse(text: str) -> onnx.ModelProto:
    return onnx.parser.parse_model(HEADER + text)


def feeds_for(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs over each type's whole range, with the float specials (+-0, +-inf, nan) up front."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for v in graph.inputs:
        if v.dtype.is_float:
            data = (rng.standard_normal(v.size) * 100).astype(v.dtype.np)
            specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], v.dtype.np)[: v.size]
            data[: len(specials)] = specials
        elif v.dtype.is_int:
            info = np.iinfo(v.dtype.np)
            data = rng.integers(info.min, info.max, v.size, dtype=v.dtype.np, endpoint=True)
        else:
            data = rng.integers(0, 2, v.size).astype(v.dtype.np)
        feeds[v.name] = data.reshape(v.shape)
    return feeds


def interpret(graph: Graph, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The graph's outputs computed node by node with the registry's numpy references."""
    env = {id(v): feeds[v.name] for v in graph.inputs}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for node in graph.nodes:
            args = [None if v is None else v.data if v.is_const else env[id(v)] for v in node.inputs]
            results = lookup(node.op, node.domain, node.version).reference(node, args)
            env.update({id(o): np.asarray(r, o.dtype.np) for o, r in zip(node.outputs, results)})
    return [v.data if v.is_const else env[id(v)] for v in graph.outputs]


def rewrite(text: str, fn) -> tuple[str, str]:
    """(IR before, IR after) of `fn` on the model `text`; checks the IR and that the outputs stay the same."""
    graph = import_onnx(parse(text))
    before = print_graph(graph)
    feeds = feeds_for(graph)
    want = interpret(graph, feeds)
    names = [v.name for v in graph.outputs]
    graph = fn(graph)
    verify(graph, infer_node)
    assert [v.name for v in graph.outputs] == names
    got = interpret(graph, feeds)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)
    return before, print_graph(graph)


SIMPLIFY_CASES = [
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y) { t = Identity(x)\n y = Relu(t) }",
        "graph(%x: float32[2,3]) -> (%y) {\n  %t: float32[2,3] = Identity(%x)\n  %y: float32[2,3] = Relu(%t)\n}\n",
        "graph(%x: float32[2,3]) -> (%y) {\n  %y: float32[2,3] = Relu(%x)\n}\n",
        id="identity-removed",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y) { t = Relu(x)\n y = Identity(t) }",
        "graph(%x: float32[2,3]) -> (%y) {\n  %t: float32[2,3] = Relu(%x)\n  %y: float32[2,3] = Identity(%t)\n}\n",
        "graph(%x: float32[2,3]) -> (%y) {\n  %y: float32[2,3] = Relu(%x)\n}\n",
        id="identity-to-graph-output-renames-its-input",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y) { y = Identity(x) }",
        "graph(%x: float32[2,3]) -> (%y) {\n  %y: float32[2,3] = Identity(%x)\n}\n",
        "graph(%x: float32[2,3]) -> (%y) {\n  %y: float32[2,3] = Identity(%x)\n}\n",
        id="keep-identity-from-graph-input-to-graph-output",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] t, float[2,3] y) { t = Relu(x)\n y = Identity(t) }",
        (
            "graph(%x: float32[2,3]) -> (%t, %y) {\n"
            "  %t: float32[2,3] = Relu(%x)\n"
            "  %y: float32[2,3] = Identity(%t)\n"
            "}\n"
        ),
        (
            "graph(%x: float32[2,3]) -> (%t, %y) {\n"
            "  %t: float32[2,3] = Relu(%x)\n"
            "  %y: float32[2,3] = Identity(%t)\n"
            "}\n"
        ),
        id="keep-identity-between-two-graph-outputs",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y) <float r = {0.5}> { d, m = Dropout(x, r)\n y = Relu(d) }",
        (
            "graph(%x: float32[2,3]) -> (%y) {\n"
            "  %r: float32[] = const [0.5]\n"
            "  %d: float32[2,3], %m: bool[2,3] = Dropout(%x, %r)\n"
            "  %y: float32[2,3] = Relu(%d)\n"
            "}\n"
        ),
        "graph(%x: float32[2,3]) -> (%y) {\n  %y: float32[2,3] = Relu(%x)\n}\n",
        id="dropout-with-unused-mask-removed",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y, bool[2,3] m) <float r = {0.5}> { d, m = Dropout(x, r)\n y = Relu(d) }",
        (
            "graph(%x: float32[2,3]) -> (%y, %m) {\n"
            "  %r: float32[] = const [0.5]\n"
            "  %d: float32[2,3], %m: bool[2,3] = Dropout(%x, %r)\n"
            "  %y: float32[2,3] = Relu(%d)\n"
            "}\n"
        ),
        (
            "graph(%x: float32[2,3]) -> (%y, %m) {\n"
            "  %r: float32[] = const [0.5]\n"
            "  %d: float32[2,3], %m: bool[2,3] = Dropout(%x, %r)\n"
            "  %y: float32[2,3] = Relu(%d)\n"
            "}\n"
        ),
        id="keep-dropout-whose-mask-is-used",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y) <int64[2] s = {2,-1}> { r = Reshape(x, s)\n y = Relu(r) }",
        (
            "graph(%x: float32[2,3]) -> (%y) {\n"
            "  %s: int64[2] = const [ 2,-1]\n"
            "  %r: float32[2,3] = Reshape(%x, %s)\n"
            "  %y: float32[2,3] = Relu(%r)\n"
            "}\n"
        ),
        "graph(%x: float32[2,3]) -> (%y) {\n  %y: float32[2,3] = Relu(%x)\n}\n",
        id="reshape-to-same-shape-removed",
    ),
    pytest.param(
        "g (float[2,3,4] x) => (float[6,4] y) <int64[2] s = {4,6}, int64[2] u = {0,-1}> "
        "{ r = Reshape(x, s)\n f = Flatten <axis = 2> (r)\n y = Reshape(f, u) }",
        (
            "graph(%x: float32[2,3,4]) -> (%y) {\n"
            "  %s: int64[2] = const [4,6]\n"
            "  %u: int64[2] = const [ 0,-1]\n"
            "  %r: float32[4,6] = Reshape(%x, %s)\n"
            "  %f: float32[24,1] = Flatten(%r) {axis=2}\n"
            "  %y: float32[24,1] = Reshape(%f, %u)\n"
            "}\n"
        ),
        (
            "graph(%x: float32[2,3,4]) -> (%y) {\n"
            "  %f:shape: int64[2] = const [24, 1]\n"
            "  %y: float32[24,1] = Reshape(%x, %f:shape)\n"
            "}\n"
        ),
        id="reshape-chain-becomes-one-reshape-with-explicit-shape",
    ),
    pytest.param(
        "g (float[2,3,4] x) => (float[6,4] y, float[24] z) <int64[2] s = {6,4}, int64[1] n = {24}> "
        "{ r = Reshape(x, n)\n z = Relu(r)\n y = Reshape(r, s) }",
        (
            "graph(%x: float32[2,3,4]) -> (%y, %z) {\n"
            "  %n: int64[1] = const [24]\n"
            "  %s: int64[2] = const [6,4]\n"
            "  %r: float32[24] = Reshape(%x, %n)\n"
            "  %z: float32[24] = Relu(%r)\n"
            "  %y: float32[6,4] = Reshape(%r, %s)\n"
            "}\n"
        ),
        (
            "graph(%x: float32[2,3,4]) -> (%y, %z) {\n"
            "  %n: int64[1] = const [24]\n"
            "  %s: int64[2] = const [6,4]\n"
            "  %r: float32[24] = Reshape(%x, %n)\n"
            "  %z: float32[24] = Relu(%r)\n"
            "  %y: float32[6,4] = Reshape(%x, %s)\n"
            "}\n"
        ),
        id="reshape-of-shared-reshape-reads-the-first-input",
    ),
    pytest.param(
        "g (float[2,3,4] x) => (float[2,3,4] y) { a = Relu(x)\n t = Transpose <perm = [2,0,1]> (a)\n"
        " y = Transpose <perm = [1,2,0]> (t) }",
        (
            "graph(%x: float32[2,3,4]) -> (%y) {\n"
            "  %a: float32[2,3,4] = Relu(%x)\n"
            "  %t: float32[4,2,3] = Transpose(%a) {perm=[2,0,1]}\n"
            "  %y: float32[2,3,4] = Transpose(%t) {perm=[1,2,0]}\n"
            "}\n"
        ),
        "graph(%x: float32[2,3,4]) -> (%y) {\n  %y: float32[2,3,4] = Relu(%x)\n}\n",
        id="inverse-transposes-removed",
    ),
    pytest.param(
        "g (float[2,3,4] x) => (float[3,4,2] y) { t = Transpose <perm = [2,0,1]> (x)\n"
        " y = Transpose <perm = [2,0,1]> (t) }",
        (
            "graph(%x: float32[2,3,4]) -> (%y) {\n"
            "  %t: float32[4,2,3] = Transpose(%x) {perm=[2,0,1]}\n"
            "  %y: float32[3,4,2] = Transpose(%t) {perm=[2,0,1]}\n"
            "}\n"
        ),
        "graph(%x: float32[2,3,4]) -> (%y) {\n  %y: float32[3,4,2] = Transpose(%x) {perm=[1,2,0]}\n}\n",
        id="transposes-compose-into-one",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y) { t = Transpose <perm = [0,1]> (x)\n y = Relu(t) }",
        (
            "graph(%x: float32[2,3]) -> (%y) {\n"
            "  %t: float32[2,3] = Transpose(%x) {perm=[0,1]}\n"
            "  %y: float32[2,3] = Relu(%t)\n"
            "}\n"
        ),
        "graph(%x: float32[2,3]) -> (%y) {\n  %y: float32[2,3] = Relu(%x)\n}\n",
        id="identity-transpose-removed",
    ),
    pytest.param(
        "g (float[2,1,3] x) => (float[1,2,3] y) { y = Transpose <perm = [1,0,2]> (x) }",
        "graph(%x: float32[2,1,3]) -> (%y) {\n  %y: float32[1,2,3] = Transpose(%x) {perm=[1,0,2]}\n}\n",
        (
            "graph(%x: float32[2,1,3]) -> (%y) {\n"
            "  %y:shape: int64[3] = const [1,2,3]\n"
            "  %y: float32[1,2,3] = Reshape(%x, %y:shape)\n"
            "}\n"
        ),
        id="transpose-of-a-unit-axis-becomes-reshape",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[3,2] y) { y = Transpose(x) }",
        "graph(%x: float32[2,3]) -> (%y) {\n  %y: float32[3,2] = Transpose(%x)\n}\n",
        "graph(%x: float32[2,3]) -> (%y) {\n  %y: float32[3,2] = Transpose(%x)\n}\n",
        id="keep-transpose-that-moves-data",
    ),
    pytest.param(
        "g (float[1,8,2,2] x) => (float[1,8,2,2] y) <int64[5] s = {1,2,4,2,2}, int64[4] u = {1,8,2,2}> "
        "{ r = Reshape(x, s)\n t = Transpose <perm = [0,2,1,3,4]> (r)\n y = Reshape(t, u) }",
        (
            "graph(%x: float32[1,8,2,2]) -> (%y) {\n"
            "  %s: int64[5] = const [1,2,4,2,2]\n"
            "  %u: int64[4] = const [1,8,2,2]\n"
            "  %r: float32[1,2,4,2,2] = Reshape(%x, %s)\n"
            "  %t: float32[1,4,2,2,2] = Transpose(%r) {perm=[0,2,1,3,4]}\n"
            "  %y: float32[1,8,2,2] = Reshape(%t, %u)\n"
            "}\n"
        ),
        (
            "graph(%x: float32[1,8,2,2]) -> (%y) {\n"
            "  %s: int64[5] = const [1,2,4,2,2]\n"
            "  %u: int64[4] = const [1,8,2,2]\n"
            "  %r: float32[1,2,4,2,2] = Reshape(%x, %s)\n"
            "  %t: float32[1,4,2,2,2] = Transpose(%r) {perm=[0,2,1,3,4]}\n"
            "  %y: float32[1,8,2,2] = Reshape(%t, %u)\n"
            "}\n"
        ),
        id="keep-channel-shuffle",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y) { c = Cast <to = 1> (x)\n y = Relu(c) }",
        "graph(%x: float32[2,3]) -> (%y) {\n  %c: float32[2,3] = Cast(%x) {to=1}\n  %y: float32[2,3] = Relu(%c)\n}\n",
        "graph(%x: float32[2,3]) -> (%y) {\n  %y: float32[2,3] = Relu(%x)\n}\n",
        id="cast-to-same-type-removed",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y) { a = Neg(x)\n w = Cast <to = 11> (a)\n y = Cast <to = 1> (w) }",
        (
            "graph(%x: float32[2,3]) -> (%y) {\n"
            "  %a: float32[2,3] = Neg(%x)\n"
            "  %w: float64[2,3] = Cast(%a) {to=11}\n"
            "  %y: float32[2,3] = Cast(%w) {to=1}\n"
            "}\n"
        ),
        "graph(%x: float32[2,3]) -> (%y) {\n  %y: float32[2,3] = Neg(%x)\n}\n",
        id="widening-cast-and-back-removed",
    ),
    pytest.param(
        "g (int32[2,3] x) => (int32[2,3] y) { a = Neg(x)\n w = Cast <to = 11> (a)\n y = Cast <to = 6> (w) }",
        (
            "graph(%x: int32[2,3]) -> (%y) {\n"
            "  %a: int32[2,3] = Neg(%x)\n"
            "  %w: float64[2,3] = Cast(%a) {to=11}\n"
            "  %y: int32[2,3] = Cast(%w) {to=6}\n"
            "}\n"
        ),
        "graph(%x: int32[2,3]) -> (%y) {\n  %y: int32[2,3] = Neg(%x)\n}\n",
        id="int32-through-float64-and-back-removed",
    ),
    pytest.param(
        "g (int8[2,3] x) => (float[2,3] y) { w = Cast <to = 5> (x)\n y = Cast <to = 1> (w) }",
        (
            "graph(%x: int8[2,3]) -> (%y) {\n"
            "  %w: int16[2,3] = Cast(%x) {to=5}\n"
            "  %y: float32[2,3] = Cast(%w) {to=1}\n"
            "}\n"
        ),
        "graph(%x: int8[2,3]) -> (%y) {\n  %y: float32[2,3] = Cast(%x) {to=1}\n}\n",
        id="two-exact-casts-become-one",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y) { a = Neg(x)\n n = Cast <to = 10> (a)\n y = Cast <to = 1> (n) }",
        (
            "graph(%x: float32[2,3]) -> (%y) {\n"
            "  %a: float32[2,3] = Neg(%x)\n"
            "  %n: float16[2,3] = Cast(%a) {to=10}\n"
            "  %y: float32[2,3] = Cast(%n) {to=1}\n"
            "}\n"
        ),
        (
            "graph(%x: float32[2,3]) -> (%y) {\n"
            "  %a: float32[2,3] = Neg(%x)\n"
            "  %n: float16[2,3] = Cast(%a) {to=10}\n"
            "  %y: float32[2,3] = Cast(%n) {to=1}\n"
            "}\n"
        ),
        id="keep-narrowing-cast-and-back",
    ),
    pytest.param(
        "g (int32[2,3] x) => (int32[2,3] y) { a = Neg(x)\n n = Cast <to = 1> (a)\n y = Cast <to = 6> (n) }",
        (
            "graph(%x: int32[2,3]) -> (%y) {\n"
            "  %a: int32[2,3] = Neg(%x)\n"
            "  %n: float32[2,3] = Cast(%a) {to=1}\n"
            "  %y: int32[2,3] = Cast(%n) {to=6}\n"
            "}\n"
        ),
        (
            "graph(%x: int32[2,3]) -> (%y) {\n"
            "  %a: int32[2,3] = Neg(%x)\n"
            "  %n: float32[2,3] = Cast(%a) {to=1}\n"
            "  %y: int32[2,3] = Cast(%n) {to=6}\n"
            "}\n"
        ),
        id="keep-int32-through-float32",
    ),
    pytest.param(
        "g (int32[2,3] x) => (int8[2,3] y) { a = Neg(x)\n w = Cast <to = 11> (a)\n y = Cast <to = 3> (w) }",
        (
            "graph(%x: int32[2,3]) -> (%y) {\n"
            "  %a: int32[2,3] = Neg(%x)\n"
            "  %w: float64[2,3] = Cast(%a) {to=11}\n"
            "  %y: int8[2,3] = Cast(%w) {to=3}\n"
            "}\n"
        ),
        (
            "graph(%x: int32[2,3]) -> (%y) {\n"
            "  %a: int32[2,3] = Neg(%x)\n"
            "  %w: float64[2,3] = Cast(%a) {to=11}\n"
            "  %y: int8[2,3] = Cast(%w) {to=3}\n"
            "}\n"
        ),
        id="keep-exact-cast-then-narrowing-to-another-type",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y) <float[3] one = {1,1,1}, float zero = {0}> "
        "{ n = Neg(x)\n a = Mul(one, n)\n b = Add(a, zero)\n c = Sub(b, zero)\n d = Div(c, one)\n y = Mul(d, one) }",
        (
            "graph(%x: float32[2,3]) -> (%y) {\n"
            "  %one: float32[3] = const [1.,1.,1.]\n"
            "  %zero: float32[] = const [0.]\n"
            "  %n: float32[2,3] = Neg(%x)\n"
            "  %a: float32[2,3] = Mul(%one, %n)\n"
            "  %b: float32[2,3] = Add(%a, %zero)\n"
            "  %c: float32[2,3] = Sub(%b, %zero)\n"
            "  %d: float32[2,3] = Div(%c, %one)\n"
            "  %y: float32[2,3] = Mul(%d, %one)\n"
            "}\n"
        ),
        "graph(%x: float32[2,3]) -> (%y) {\n  %y: float32[2,3] = Neg(%x)\n}\n",
        id="mul-1-add-0-sub-0-div-1-removed",
    ),
    pytest.param(
        "g (int64[2,3] x) => (int64[2,3] y) <int64 one = {1}, int64 zero = {0}> "
        "{ n = Neg(x)\n a = Mul(n, one)\n y = Add(zero, a) }",
        (
            "graph(%x: int64[2,3]) -> (%y) {\n"
            "  %one: int64[] = const [1]\n"
            "  %zero: int64[] = const [0]\n"
            "  %n: int64[2,3] = Neg(%x)\n"
            "  %a: int64[2,3] = Mul(%n, %one)\n"
            "  %y: int64[2,3] = Add(%zero, %a)\n"
            "}\n"
        ),
        "graph(%x: int64[2,3]) -> (%y) {\n  %y: int64[2,3] = Neg(%x)\n}\n",
        id="integer-mul-1-add-0-removed",
    ),
    pytest.param(
        "g (float[3] x) => (float[2,3] y, float[3] z, float[3] w) <float[2,3] one = {1,1,1,1,1,1}, "
        "float zero = {0}, float[3] two = {1,2,1}> { a = Neg(x)\n y = Mul(a, one)\n z = Sub(zero, a)\n w = Mul(a, two) }",
        (
            "graph(%x: float32[3]) -> (%y, %z, %w) {\n"
            "  %one: float32[2,3] = const [1.,1.,1.,1.,1.,1.]\n"
            "  %zero: float32[] = const [0.]\n"
            "  %two: float32[3] = const [1.,2.,1.]\n"
            "  %a: float32[3] = Neg(%x)\n"
            "  %y: float32[2,3] = Mul(%a, %one)\n"
            "  %z: float32[3] = Sub(%zero, %a)\n"
            "  %w: float32[3] = Mul(%a, %two)\n"
            "}\n"
        ),
        (
            "graph(%x: float32[3]) -> (%y, %z, %w) {\n"
            "  %one: float32[2,3] = const [1.,1.,1.,1.,1.,1.]\n"
            "  %zero: float32[] = const [0.]\n"
            "  %two: float32[3] = const [1.,2.,1.]\n"
            "  %a: float32[3] = Neg(%x)\n"
            "  %y: float32[2,3] = Mul(%a, %one)\n"
            "  %z: float32[3] = Sub(%zero, %a)\n"
            "  %w: float32[3] = Mul(%a, %two)\n"
            "}\n"
        ),
        id="keep-broadcasting-mul-1-negation-and-non-unit-factor",
    ),
    pytest.param(
        "g (float[2,3] x) => (int64[2] s, int64 n) { r = Relu(x)\n s = Shape(r)\n n = Size(r) }",
        (
            "graph(%x: float32[2,3]) -> (%s, %n) {\n"
            "  %r: float32[2,3] = Relu(%x)\n"
            "  %s: int64[2] = Shape(%r)\n"
            "  %n: int64[] = Size(%r)\n"
            "}\n"
        ),
        (
            "graph(%x: float32[2,3]) -> (%s, %n) {\n"
            "  %r: float32[2,3] = Relu(%x)\n"
            "  %s: int64[2] = Shape(%r)\n"
            "  %n: int64[] = Size(%r)\n"
            "}\n"
        ),
        id="keep-shape-and-size-for-fold",
    ),
]

CSE_CASES = [
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y) { a = Relu(x)\n b = Relu(x)\n y = Add(a, b) }",
        (
            "graph(%x: float32[2,3]) -> (%y) {\n"
            "  %a: float32[2,3] = Relu(%x)\n"
            "  %b: float32[2,3] = Relu(%x)\n"
            "  %y: float32[2,3] = Add(%a, %b)\n"
            "}\n"
        ),
        "graph(%x: float32[2,3]) -> (%y) {\n  %a: float32[2,3] = Relu(%x)\n  %y: float32[2,3] = Add(%a, %a)\n}\n",
        id="equal-nodes-merged",
    ),
    pytest.param(
        "g (float[2,3] x, float[2,3] z) => (float[2,3] y, float[2,3] w) "
        "{ a = Add(x, z)\n b = Add(z, x)\n y = Mul(a, b)\n c = Sub(x, z)\n d = Sub(z, x)\n w = Mul(c, d) }",
        (
            "graph(%x: float32[2,3], %z: float32[2,3]) -> (%y, %w) {\n"
            "  %a: float32[2,3] = Add(%x, %z)\n"
            "  %b: float32[2,3] = Add(%z, %x)\n"
            "  %y: float32[2,3] = Mul(%a, %b)\n"
            "  %c: float32[2,3] = Sub(%x, %z)\n"
            "  %d: float32[2,3] = Sub(%z, %x)\n"
            "  %w: float32[2,3] = Mul(%c, %d)\n"
            "}\n"
        ),
        (
            "graph(%x: float32[2,3], %z: float32[2,3]) -> (%y, %w) {\n"
            "  %a: float32[2,3] = Add(%x, %z)\n"
            "  %y: float32[2,3] = Mul(%a, %a)\n"
            "  %c: float32[2,3] = Sub(%x, %z)\n"
            "  %d: float32[2,3] = Sub(%z, %x)\n"
            "  %w: float32[2,3] = Mul(%c, %d)\n"
            "}\n"
        ),
        id="commuted-add-merged-sub-kept",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y) { a = LeakyRelu <alpha = 0.25> (x)\n b = LeakyRelu <alpha = 0.25> (x)\n"
        " c = LeakyRelu <alpha = 0.5> (x)\n d = Add(a, b)\n y = Add(d, c) }",
        (
            "graph(%x: float32[2,3]) -> (%y) {\n"
            "  %a: float32[2,3] = LeakyRelu(%x) {alpha=0.25}\n"
            "  %b: float32[2,3] = LeakyRelu(%x) {alpha=0.25}\n"
            "  %c: float32[2,3] = LeakyRelu(%x) {alpha=0.5}\n"
            "  %d: float32[2,3] = Add(%a, %b)\n"
            "  %y: float32[2,3] = Add(%d, %c)\n"
            "}\n"
        ),
        (
            "graph(%x: float32[2,3]) -> (%y) {\n"
            "  %a: float32[2,3] = LeakyRelu(%x) {alpha=0.25}\n"
            "  %c: float32[2,3] = LeakyRelu(%x) {alpha=0.5}\n"
            "  %d: float32[2,3] = Add(%a, %a)\n"
            "  %y: float32[2,3] = Add(%d, %c)\n"
            "}\n"
        ),
        id="attributes-compared",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y) <float[3] p = {1,2,3}, float[3] q = {1,2,3}> "
        "{ a = Mul(x, p)\n b = Mul(x, q)\n y = Add(a, b) }",
        (
            "graph(%x: float32[2,3]) -> (%y) {\n"
            "  %p: float32[3] = const [1.,2.,3.]\n"
            "  %q: float32[3] = const [1.,2.,3.]\n"
            "  %a: float32[2,3] = Mul(%x, %p)\n"
            "  %b: float32[2,3] = Mul(%x, %q)\n"
            "  %y: float32[2,3] = Add(%a, %b)\n"
            "}\n"
        ),
        (
            "graph(%x: float32[2,3]) -> (%y) {\n"
            "  %p: float32[3] = const [1.,2.,3.]\n"
            "  %a: float32[2,3] = Mul(%x, %p)\n"
            "  %y: float32[2,3] = Add(%a, %a)\n"
            "}\n"
        ),
        id="equal-constants-merged-then-their-users",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y) <float[3] p = {0,0,0}, float[3] n = {-0.0,0,0}, float[1,3] q = {0,0,0},"
        " int32[3] d = {0,0,0}> { a = Add(x, p)\n b = Add(x, n)\n c = Add(x, q)\n e = Cast <to = 1> (d)\n"
        " f = Add(a, b)\n g = Add(c, e)\n y = Add(f, g) }",
        (
            "graph(%x: float32[2,3]) -> (%y) {\n"
            "  %p: float32[3] = const [0.,0.,0.]\n"
            "  %n: float32[3] = const [-0., 0., 0.]\n"
            "  %q: float32[1,3] = const [0.,0.,0.]\n"
            "  %d: int32[3] = const [0,0,0]\n"
            "  %a: float32[2,3] = Add(%x, %p)\n"
            "  %b: float32[2,3] = Add(%x, %n)\n"
            "  %c: float32[2,3] = Add(%x, %q)\n"
            "  %e: float32[3] = Cast(%d) {to=1}\n"
            "  %f: float32[2,3] = Add(%a, %b)\n"
            "  %g: float32[2,3] = Add(%c, %e)\n"
            "  %y: float32[2,3] = Add(%f, %g)\n"
            "}\n"
        ),
        (
            "graph(%x: float32[2,3]) -> (%y) {\n"
            "  %p: float32[3] = const [0.,0.,0.]\n"
            "  %n: float32[3] = const [-0., 0., 0.]\n"
            "  %q: float32[1,3] = const [0.,0.,0.]\n"
            "  %d: int32[3] = const [0,0,0]\n"
            "  %a: float32[2,3] = Add(%x, %p)\n"
            "  %b: float32[2,3] = Add(%x, %n)\n"
            "  %c: float32[2,3] = Add(%x, %q)\n"
            "  %e: float32[3] = Cast(%d) {to=1}\n"
            "  %f: float32[2,3] = Add(%a, %b)\n"
            "  %g: float32[2,3] = Add(%c, %e)\n"
            "  %y: float32[2,3] = Add(%f, %g)\n"
            "}\n"
        ),
        id="keep-constants-differing-in-bytes-shape-or-type",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y, float[2,3] z) { y = Relu(x)\n z = Relu(x) }",
        "graph(%x: float32[2,3]) -> (%y, %z) {\n  %y: float32[2,3] = Relu(%x)\n  %z: float32[2,3] = Relu(%x)\n}\n",
        "graph(%x: float32[2,3]) -> (%y, %z) {\n  %y: float32[2,3] = Relu(%x)\n  %z: float32[2,3] = Relu(%x)\n}\n",
        id="keep-duplicates-that-are-both-graph-outputs",
    ),
    pytest.param(
        "g (float[2,3] x) => (float[2,3] y, float[2,3] z) { a = Relu(x)\n y = Exp(a)\n z = Relu(x) }",
        (
            "graph(%x: float32[2,3]) -> (%y, %z) {\n"
            "  %a: float32[2,3] = Relu(%x)\n"
            "  %y: float32[2,3] = Exp(%a)\n"
            "  %z: float32[2,3] = Relu(%x)\n"
            "}\n"
        ),
        "graph(%x: float32[2,3]) -> (%y, %z) {\n  %z: float32[2,3] = Relu(%x)\n  %y: float32[2,3] = Exp(%z)\n}\n",
        id="duplicate-graph-output-keeps-its-name",
    ),
]


@pytest.mark.parametrize(("text", "before", "after"), SIMPLIFY_CASES)
def test_simplify(text, before, after):
    assert rewrite(text, simplify) == (before, after)


@pytest.mark.parametrize(("text", "before", "after"), CSE_CASES)
def test_cse(text, before, after):
    assert rewrite(text, eliminate_common_subexpressions) == (before, after)


def test_fold_already_turns_shape_and_size_of_a_static_tensor_into_constants():
    """Shape/Size of a static tensor are fold_constants' job (simplify leaves them, see above)."""
    graph = import_onnx(parse("g (float[2,3] x) => (int64[2] s, int64 n) { r = Relu(x)\n s = Shape(r)\n n = Size(r) }"))
    graph = eliminate_dead_code(fold_constants(graph))
    verify(graph, infer_node)
    assert print_graph(graph) == (
        "graph(%x: float32[2,3]) -> (%s, %n) {\n  %s: int64[2] = const [2,3]\n  %n: int64[] = const [6]\n}\n"
    )


def extremes(dtype) -> np.ndarray:
    if dtype.kind == "bool":
        return np.array([False, True])
    if dtype.is_int:
        info = ml_dtypes.iinfo(dtype.np)
        return np.array([info.min, info.min + 1, -1 if info.min else 0, 0, 1, info.max - 1, info.max], dtype.np)
    info = ml_dtypes.finfo(dtype.np)
    values = [info.min, -info.tiny, -info.smallest_subnormal, -0.0, 0.0, info.smallest_subnormal, info.tiny]
    return np.array([*values, info.eps, 1 + info.eps, 1 / 3, info.max, np.inf, -np.inf, np.nan], dtype.np)


NUMBERS = [d for d in ALL if d.kind != "string"]


def test_no_cast_to_or_from_strings_is_exact():
    assert not any(exact_cast(STRING, d) or exact_cast(d, STRING) for d in NUMBERS)


@pytest.mark.parametrize("a", NUMBERS, ids=str)
def test_every_cast_called_exact_round_trips_the_extremes(a):
    for b in NUMBERS:
        if not exact_cast(a, b):
            continue
        x = extremes(a)
        with np.errstate(all="ignore"):
            back = x.astype(b.np).astype(a.np)
        if a.is_float:  # compared in float64 (exact for every float type; numpy has no NaN test for bfloat16)
            back, x = back.astype(np.float64), x.astype(np.float64)
            np.testing.assert_array_equal(np.signbit(back), np.signbit(x), err_msg=f"{a} -> {b}")
        np.testing.assert_array_equal(back, x, err_msg=f"{a} -> {b}")


def test_new_shape_constants_get_fresh_names():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3])
    taken = numpy_helper.from_array(np.ones(3, np.float32), "t:shape")
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
        helper.make_node("Add", ["t", "t:shape"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y], [taken])
    graph = simplify(import_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])))
    verify(graph, infer_node)
    assert print_graph(graph) == (
        "graph(%x: float32[2,1,3]) -> (%y) {\n"
        "  %t:shape.1: int64[3] = const [1,2,3]\n"
        "  %t:shape: float32[3] = const [1.,1.,1.]\n"
        "  %t: float32[1,2,3] = Reshape(%x, %t:shape.1)\n"
        "  %y: float32[1,2,3] = Add(%t, %t:shape)\n"
        "}\n"
    )


def test_attribute_keys_compare_tensors_by_value_and_floats_bit_for_bit():
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.arange(6, dtype=np.float32).reshape(2, 3)
    assert attr_key(a) == attr_key(b)
    assert attr_key(a) != attr_key(a.astype(np.float64))
    assert attr_key(a) != attr_key(a.reshape(3, 2))
    assert attr_key(a) != attr_key(a.astype(np.int32).view(np.float32))
    assert attr_key(0.0) != attr_key(-0.0)
    assert attr_key(float("nan")) == attr_key(float("nan"))
    assert attr_key(1) != attr_key(1.0)
    assert attr_key([1, 2]) == attr_key((1, 2)) != attr_key([2, 1])


def test_cse_never_merges_random_draws_or_different_opset_versions():
    x = Value("x", FLOAT32, (2,))
    nodes = []
    for op, version, ins in (("RandomNormal", 17, []), ("RandomNormal", 17, []), ("Relu", 6, [x]), ("Relu", 14, [x])):
        out = Value(f"v{len(nodes)}", FLOAT32, (2,))
        nodes.append(Node(op, list(ins), [out], {"shape": [2]} if not ins else {}, version=version))
        out.producer = nodes[-1]
    graph = Graph("g", [x], [n.outputs[0] for n in nodes], nodes)
    before = print_graph(graph)
    assert print_graph(eliminate_common_subexpressions(graph)) == before
    assert len(graph.nodes) == 4


CLEANUP_MODEL = """
g (float[2,3,4] x, float[2,3,4] z) => (float[2,3,4] y, float[2,12] o2, float[2,3,4] o3)
<float r = {0.5}, float one = {1}, float zero = {0}, float[4] w1 = {1,2,3,4}, float[4] w2 = {1,2,3,4},
 int64[2] s1 = {6,4}, int64[3] s2 = {2,3,4}, int64[2] s3 = {2,12}, int64[1] ax = {1}> {
  n = Neg(x)
  i = Identity(n)
  d = Dropout(i, r)
  m = Mul(d, one)
  a = Add(zero, m)
  t1 = Transpose <perm = [2,0,1]> (a)
  t2 = Transpose <perm = [1,2,0]> (t1)
  r1 = Reshape(t2, s1)
  r2 = Reshape(r1, s2)
  c1 = Cast <to = 11> (r2)
  c2 = Cast <to = 1> (c1)
  h = Cast <to = 10> (c2)
  h2 = Cast <to = 1> (h)
  p = Mul(h2, w1)
  q = Mul(h2, w2)
  e1 = Add(p, z)
  e2 = Add(z, q)
  y = Mul(e1, e2)
  k = Unsqueeze(e1, ax)
  kt = Transpose <perm = [1,0,2,3]> (k)
  o2 = Reshape(kt, s3)
  o3 = Identity(h2)
}
"""
CLEANUP = [
    ("fold_constants", fold_constants),
    ("simplify", simplify),
    ("eliminate_common_subexpressions", eliminate_common_subexpressions),
    ("legalize_types", legalize_types),
    ("eliminate_dead_code", eliminate_dead_code),
]


def test_cleanup_model_ir():
    """Every rewrite of both passes on one model; a second round changes nothing."""
    graph = import_onnx(parse(CLEANUP_MODEL))
    for _, fn in CLEANUP:
        graph = fn(graph)
        verify(graph, infer_node)
    assert print_graph(graph) == (
        "graph(%x: float32[2,3,4], %z: float32[2,3,4]) -> (%y, %o2, %o3) {\n"
        "  %w1: float32[4] = const [1.,2.,3.,4.]\n"
        "  %s3: int64[2] = const [ 2,12]\n"
        "  %n: float32[2,3,4] = Neg(%x)\n"
        "  %h: float16[2,3,4] = Cast(%n) {to=10}\n"
        "  %o3: float32[2,3,4] = Cast(%h) {to=1}\n"
        "  %p: float32[2,3,4] = Mul(%o3, %w1)\n"
        "  %e1: float32[2,3,4] = Add(%p, %z)\n"
        "  %y: float32[2,3,4] = Mul(%e1, %e1)\n"
        "  %o2: float32[2,12] = Reshape(%e1, %s3)\n"
        "}\n"
    )
    again = print_graph(graph)
    assert print_graph(eliminate_common_subexpressions(simplify(graph))) == again


def test_cleanup_model_matches_onnxruntime(tmp_path, monkeypatch):
    model = parse(CLEANUP_MODEL)
    rng = np.random.default_rng(5)
    feeds = {k: rng.standard_normal((2, 3, 4)).astype(np.float32) for k in ("x", "z")}
    want = run_ort(model, feeds)
    monkeypatch.setattr(pipeline, "passes_for", lambda target, level: CLEANUP)
    got = run_mlcc(model, feeds, tmp_path / "cleanup")
    assert_close(got, want, rtol=1e-6, atol=1e-6)
    report = json.loads((tmp_path / "cleanup" / "report.json").read_text())
    assert [p["pass"] for p in report["passes"]] == [name for name, _ in CLEANUP]
    assert (report["nodes_in"], report["nodes_out"]) == (22, 7)


def cleaned(graph: Graph) -> Graph:
    for _, fn in CLEANUP:
        graph = fn(graph)
    return graph


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_ir_after_cleanup(name):
    graph = cleaned(import_onnx(LIGHT / f"light_{name}.onnx"))
    verify(graph, infer_node)
    baseline = import_onnx(LIGHT / f"light_{name}.onnx")
    for _, fn in pipeline.MANDATORY:
        baseline = fn(baseline)
    assert len(graph.nodes) <= len(baseline.nodes)
    assert len(graph.constants()) <= len(baseline.constants())
    assert not [n for n in graph.nodes if n.op in ("Identity", "Dropout")]
    assert len(graph.nodes) == LIGHT_NODES_AFTER[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_after_cleanup_matches_expected_output(name, tmp_path, monkeypatch):
    path = LIGHT / f"light_{name}.onnx"
    want = numpy_helper.to_array(onnx.load_tensor(str(LIGHT / f"light_{name}_output_0.pb")))
    monkeypatch.setattr(pipeline, "passes_for", lambda target, level: CLEANUP)
    got = run_mlcc(path, dummy_input(onnx.load(path)), tmp_path / name)
    np.testing.assert_allclose(got[0], want, rtol=LIGHT_RTOL.get(name, 1e-3), atol=1e-7)
    report = json.loads((tmp_path / name / "report.json").read_text())
    assert report["nodes_out"] == LIGHT_NODES_AFTER[name]
