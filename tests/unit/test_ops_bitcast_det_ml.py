"""BitCast, Det, TfIdfVectorizer and the ai.onnx.ml ops Binarizer, ArrayFeatureExtractor and TreeEnsemble
against onnxruntime on seeded random inputs: every BitCast width, batched and singular determinants, every
tree node mode (set membership and NaN tracking included), aggregate function and post transform, n-gram
lengths, skips and weighting modes; the numpy references (constant folding); the generated C under -Wall
-Wextra -Werror and the generated CUDA through nvcc."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import mlcc
from helpers import NEEDS_NVCC, assert_close, build_c_strictly, compile_cuda_strictly, run_mlcc, run_ort
from mlcc.errors import UnsupportedError

FLOAT, DOUBLE, INT32, INT64 = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT32, TensorProto.INT64
ML = "ai.onnx.ml"


def model(nodes, inputs, outputs, inits=(), opset=26, ml=None):
    """A model over `inputs` [(name, elem, shape)] and `outputs` [(name, elem)]."""
    graph = helper.make_graph(
        nodes,
        "m",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, None) for n, t in outputs],
        list(inits),
    )
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(ML, ml)] if ml else [])
    return helper.make_model(graph, opset_imports=opsets)


def check(m: onnx.ModelProto, feeds: dict, tmp_path, rtol=1e-5, atol=1e-6, ort=True) -> None:
    """mlcc against onnxruntime, or against onnx's ReferenceEvaluator where onnxruntime lacks the kernel."""
    want = run_ort(m, feeds) if ort else ReferenceEvaluator(m).run(None, feeds)
    assert_close(run_mlcc(m, feeds, tmp_path / "out"), want, rtol=rtol, atol=atol)


# ---- BitCast -------------------------------------------------------------------------------------------

BITCAST = {
    "float32_to_int32": (np.float32, TensorProto.INT32, (3, 4)),
    "int32_to_float32": (np.int32, FLOAT, (5,)),
    "uint32_to_float32": (np.uint32, FLOAT, (2, 3)),
    "float64_to_int64": (np.float64, INT64, (2, 2, 3)),
    "int64_to_float64": (np.int64, DOUBLE, (4,)),
    "float64_to_uint64": (np.float64, TensorProto.UINT64, (3,)),
    "int16_to_uint16": (np.int16, TensorProto.UINT16, (7,)),
    "uint8_to_int8": (np.uint8, TensorProto.INT8, (2, 5)),
    "bool_to_uint8": (np.bool_, TensorProto.UINT8, (6,)),
    "scalar_float32_to_uint32": (np.float32, TensorProto.UINT32, ()),
}


def bits(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    size = int(np.prod(shape, dtype=np.int64))
    x = rng.integers(0, 256, size=size * np.dtype(dtype).itemsize, dtype=np.uint8).view(dtype).reshape(shape)
    if np.dtype(dtype).kind == "f":  # no NaN payloads: onnxruntime and numpy may canonicalize them
        x = np.where(np.isnan(x), dtype(1.5), x).astype(dtype)
    return x


@pytest.mark.parametrize("name", sorted(BITCAST))
def test_bitcast_matches_numpy_views(name, tmp_path):
    """numpy's view of the same bytes (onnxruntime 1.32 has no BitCast for bool, onnx's reference none for 0-D)."""
    dtype, to, shape = BITCAST[name]
    x = bits(dtype, shape, seed=len(name))
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    m = model([helper.make_node("BitCast", ["x"], ["y"], to=to)], [("x", elem, shape)], [("y", to)])
    (got,) = run_mlcc(m, {"x": x}, tmp_path / "out")
    want = x.reshape(-1).view(helper.tensor_dtype_to_np_dtype(to)).reshape(shape)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got.reshape(-1).view(np.uint8), want.reshape(-1).view(np.uint8))


def test_bitcast_to_bool_is_nonzero(tmp_path):
    x = np.array([0, 1, 2, 255, 0], np.uint8)
    m = model([helper.make_node("BitCast", ["x"], ["y"], to=TensorProto.BOOL)], [("x", TensorProto.UINT8, [5])], [])
    m.graph.output.append(helper.make_tensor_value_info("y", TensorProto.BOOL, None))
    (got,) = run_mlcc(m, {"x": x}, tmp_path / "out")
    np.testing.assert_array_equal(got.view(np.uint8), [0, 1, 1, 1, 0])


def test_bitcast_needs_equal_widths(tmp_path):
    m = model([helper.make_node("BitCast", ["x"], ["y"], to=INT64)], [("x", FLOAT, [3])], [("y", INT64)])
    with pytest.raises(mlcc.MlccError, match="same bit width"):
        mlcc.compile(m, out_dir=tmp_path, build=False)


# ---- Det -----------------------------------------------------------------------------------------------

DET = {
    "2d": ((3, 3), FLOAT),
    "batch": ((4, 5, 5), FLOAT),
    "batch_2d_double": ((2, 3, 6, 6), DOUBLE),
    "one_by_one": ((3, 1, 1), FLOAT),
    "opset11_4x4": ((2, 4, 4), FLOAT),
}


@pytest.mark.parametrize("name", sorted(DET))
def test_det_matches_onnxruntime(name, tmp_path):
    shape, elem = DET[name]
    x = np.random.default_rng(len(name)).standard_normal(shape).astype(helper.tensor_dtype_to_np_dtype(elem))
    opset = 11 if name.startswith("opset11") else 22
    m = model([helper.make_node("Det", ["x"], ["y"])], [("x", elem, shape)], [("y", elem)], opset=opset)
    check(m, {"x": x}, tmp_path, rtol=1e-4, atol=1e-5, ort=elem == FLOAT)  # onnxruntime: float Det only


def test_det_singular_and_pivoting(tmp_path):
    x = np.array(
        [
            [[1, 2, 3], [2, 4, 6], [0, 1, 1]],  # singular: 0
            [[0, 0, 2], [0, 3, 0], [4, 0, 0]],  # needs row swaps: -24
            [[1e-20, 1, 0], [1, 1, 0], [0, 0, 2]],  # a tiny leading pivot: partial pivoting keeps -2 exact
        ],
        np.float64,
    )
    m = model([helper.make_node("Det", ["x"], ["y"])], [("x", DOUBLE, x.shape)], [("y", DOUBLE)], opset=22)
    (got,) = run_mlcc(m, {"x": x}, tmp_path / "out")
    np.testing.assert_allclose(got, [0.0, -24.0, -2.0], rtol=1e-12, atol=1e-12)


# ---- Binarizer, ArrayFeatureExtractor ------------------------------------------------------------------


@pytest.mark.parametrize("elem, threshold", [(FLOAT, 0.25), (DOUBLE, -0.5), (INT64, 1.0), (INT32, 0.0), (FLOAT, None)])
def test_binarizer_matches_onnxruntime(elem, threshold, tmp_path):
    rng = np.random.default_rng(elem)
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    x = (rng.standard_normal((3, 7)) * 3).astype(dtype) if dtype.kind == "f" else rng.integers(-3, 4, (3, 7))
    x = x.astype(dtype)
    attrs = {} if threshold is None else {"threshold": threshold}
    node = helper.make_node("Binarizer", ["x"], ["y"], domain=ML, **attrs)
    m = model([node], [("x", elem, x.shape)], [("y", elem)], ml=1)
    check(m, {"x": x}, tmp_path, ort=elem == FLOAT)  # onnxruntime: float Binarizer only


AFE = {
    "2d": ((3, 6), FLOAT, [0, 5, 2, 2]),
    "1d": ((6,), INT64, [4, 1]),
    "3d_2d_indices": ((2, 3, 5), DOUBLE, [[1, 0], [4, 3]]),
    "int32_row_indices": ((4, 5), INT32, [[3, 1, 0]]),
}


@pytest.mark.parametrize("name", sorted(AFE))
def test_array_feature_extractor_matches_onnxruntime(name, tmp_path):
    shape, elem, idx = AFE[name]
    x = (np.random.default_rng(len(name)).standard_normal(shape) * 10).astype(helper.tensor_dtype_to_np_dtype(elem))
    idx = np.array(idx, np.int64)
    node = helper.make_node("ArrayFeatureExtractor", ["x", "i"], ["y"], domain=ML)
    m = model([node], [("x", elem, shape), ("i", INT64, idx.shape)], [("y", elem)], ml=1)
    check(m, {"x": x, "i": idx}, tmp_path)


def test_array_feature_extractor_out_of_range_index_stays_inside(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    node = helper.make_node("ArrayFeatureExtractor", ["x", "i"], ["y"], domain=ML)
    m = model([node], [("x", FLOAT, [3, 4]), ("i", INT64, [3])], [("y", FLOAT)], ml=1)
    (got,) = run_mlcc(m, {"x": x, "i": np.array([1, 99, -1], np.int64)}, tmp_path / "out")
    np.testing.assert_array_equal(got, x[:, [1, 0, 3]])


# ---- TreeEnsemble --------------------------------------------------------------------------------------


def random_forest(seed: int, n_trees: int, n_features: int, n_targets: int, depth: int = 4) -> dict:
    """Attributes of a random TreeEnsemble: every node mode, NaN tracking, set membership, a one-leaf tree."""
    rng = np.random.default_rng(seed)
    nodes = {k: [] for k in ("feature", "mode", "split", "true", "false", "tleaf", "fleaf", "missing")}
    leaves, members, roots = {"w": [], "t": []}, [], []

    def leaf() -> int:
        leaves["w"].append(float(np.round(rng.standard_normal(), 3)))
        leaves["t"].append(int(rng.integers(0, n_targets)))
        return len(leaves["w"]) - 1

    def grow(level: int) -> int:
        i = len(nodes["feature"])
        mode = int(rng.integers(0, 7))
        for k, v in (("feature", int(rng.integers(0, n_features))), ("mode", mode)):
            nodes[k].append(v)
        nodes["split"].append(float(rng.integers(0, 6)) / 2)
        nodes["missing"].append(int(rng.integers(0, 2)))
        if mode == 6:
            members.extend([float(v) / 2 for v in rng.choice(6, size=int(rng.integers(1, 4)), replace=False)])
            members.append(np.nan)
        for side, flag in (("true", "tleaf"), ("false", "fleaf")):
            nodes[side].append(0)
            nodes[flag].append(0)
        for side, flag in (("true", "tleaf"), ("false", "fleaf")):
            is_leaf = level >= depth or rng.random() < 0.3
            nodes[flag][i] = int(is_leaf)
            nodes[side][i] = leaf() if is_leaf else grow(level + 1)
        return i

    for _ in range(n_trees):
        roots.append(grow(1))
    # a tree that is a single leaf: both branches of its root name the same leaf
    only = leaf()
    for k, v in (("feature", 0), ("mode", 0), ("split", 0.0), ("missing", 0), ("true", only), ("false", only)):
        nodes[k].append(v)
    nodes["tleaf"].append(1)
    nodes["fleaf"].append(1)
    roots.append(len(nodes["feature"]) - 1)
    # membership sets go in node order, while members was filled in creation order: the same here
    attrs = {
        "tree_roots": roots,
        "nodes_featureids": nodes["feature"],
        "nodes_modes": numpy_helper.from_array(np.array(nodes["mode"], np.uint8)),
        "nodes_truenodeids": nodes["true"],
        "nodes_falsenodeids": nodes["false"],
        "nodes_trueleafs": nodes["tleaf"],
        "nodes_falseleafs": nodes["fleaf"],
        "nodes_missing_value_tracks_true": nodes["missing"],
        "leaf_targetids": leaves["t"],
        "n_targets": n_targets,
    }
    arrays = {"nodes_splits": nodes["split"], "leaf_weights": leaves["w"]}
    if members:
        arrays["membership_values"] = members
    return attrs, arrays


def tree_model(attrs, arrays, elem, n_features, n_rows=40, **extra) -> onnx.ModelProto:
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    tensors = {k: numpy_helper.from_array(np.array(v, dtype), k) for k, v in arrays.items()}
    node = helper.make_node("TreeEnsemble", ["x"], ["y"], domain=ML, **attrs, **tensors, **extra)
    return model([node], [("x", elem, [n_rows, n_features])], [("y", elem)], opset=21, ml=5)


def tree_inputs(seed, n, n_features, dtype):
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 6, size=(n, n_features)) / 2).astype(dtype)
    x[rng.random(x.shape) < 0.15] = np.nan
    return x


# onnxruntime 1.32 reads post_transform 1 as LOGISTIC and 2 as SOFTMAX, the reverse of the spec's codes
ORT_TRANSFORM = {0: 0, 1: 2, 2: 1, 3: 3, 4: 4}

# (seed, trees, features, targets, element type, aggregate_function, post_transform)
TREES = {
    "sum_float": (1, 5, 4, 3, FLOAT, 1, 0),
    "average_double": (2, 6, 3, 2, DOUBLE, 0, 0),
    "min_float": (3, 7, 5, 4, FLOAT, 2, 0),
    "max_double": (4, 4, 2, 3, DOUBLE, 3, 0),
    "softmax": (5, 5, 4, 3, FLOAT, 1, 1),
    "logistic": (6, 5, 4, 3, FLOAT, 1, 2),
    "softmax_zero": (7, 3, 4, 4, FLOAT, 1, 3),
    "probit_average": (8, 6, 3, 2, DOUBLE, 0, 4),
    "single_target_sum": (9, 8, 6, 1, FLOAT, 1, 0),
}


@pytest.mark.parametrize("name", sorted(TREES))
def test_tree_ensemble_matches_onnxruntime(name, tmp_path):
    seed, n_trees, n_features, n_targets, elem, aggregate, transform = TREES[name]
    attrs, arrays = random_forest(seed, n_trees, n_features, n_targets)
    x = tree_inputs(seed, 40, n_features, helper.tensor_dtype_to_np_dtype(elem))
    ours = tree_model(attrs, arrays, elem, n_features, aggregate_function=aggregate, post_transform=transform)
    theirs = tree_model(
        attrs, arrays, elem, n_features, aggregate_function=aggregate, post_transform=ORT_TRANSFORM[transform]
    )
    got = run_mlcc(ours, {"x": x}, tmp_path / "out")
    assert_close(got, run_ort(theirs, {"x": x}), rtol=1e-5, atol=1e-5)


def test_tree_ensemble_single_target_transforms_follow_the_spec(tmp_path):
    """onnxruntime skips LOGISTIC and SOFTMAX for one target; the spec applies them to every score."""
    attrs, arrays = random_forest(11, 4, 3, 1)
    x = tree_inputs(11, 40, 3, np.float32)
    (raw,) = run_ort(tree_model(attrs, arrays, FLOAT, 3), {"x": x})
    (logistic,) = run_mlcc(tree_model(attrs, arrays, FLOAT, 3, post_transform=2), {"x": x}, tmp_path / "l")
    (softmax,) = run_mlcc(tree_model(attrs, arrays, FLOAT, 3, post_transform=1), {"x": x}, tmp_path / "s")
    np.testing.assert_allclose(logistic, 1 / (1 + np.exp(-raw.astype(np.float64))), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(softmax, np.ones_like(raw))


def test_tree_ensemble_membership_sets_follow_node_order(tmp_path):
    """Node 0 is a BRANCH_MEMBER root whose true child (node 2) is visited before node 1; sets go by index:
    node 0 {1, 2} on feature 0, node 1 {3} and node 2 {4, 0} on feature 1."""
    attrs = {
        "tree_roots": [0],
        "nodes_featureids": [0, 1, 1],
        "nodes_modes": numpy_helper.from_array(np.array([6, 6, 6], np.uint8)),
        "nodes_truenodeids": [2, 0, 2],
        "nodes_falsenodeids": [1, 1, 0],
        "nodes_trueleafs": [0, 1, 1],
        "nodes_falseleafs": [0, 1, 1],
        "leaf_targetids": [0, 0, 0],
        "n_targets": 1,
    }
    arrays = {
        "nodes_splits": [0.0, 0.0, 0.0],
        "leaf_weights": [1.0, 10.0, 100.0],
        "membership_values": [1.0, 2.0, np.nan, 3.0, np.nan, 4.0, 0.0, np.nan],
    }
    x = np.array([[v, w] for v in (1.0, 2.0, 5.0) for w in (0.0, 3.0, 4.0, 9.0)], np.float32)
    m = tree_model(attrs, arrays, FLOAT, 2, n_rows=len(x))
    (got,) = run_mlcc(m, {"x": x}, tmp_path / "out")
    assert_close([got], run_ort(m, {"x": x}))
    assert set(got.ravel().tolist()) == {1.0, 10.0, 100.0}  # a zero member counts (not an end marker)


def test_tree_ensemble_rejects_bad_structure(tmp_path):
    attrs, arrays = random_forest(1, 2, 3, 2)
    n = len(attrs["nodes_truenodeids"])
    cyclic = dict(attrs, nodes_truenodeids=[0] * n, nodes_trueleafs=[0] * n)  # every true branch back to node 0
    with pytest.raises(mlcc.MlccError, match="cycle"):
        mlcc.compile(tree_model(cyclic, arrays, FLOAT, 3), out_dir=tmp_path / "c", build=False)
    with pytest.raises(mlcc.MlccError, match="reads feature"):
        mlcc.compile(tree_model(attrs, arrays, FLOAT, 1), out_dir=tmp_path / "f", build=False)
    wrong = dict(attrs, leaf_targetids=[5] * len(attrs["leaf_targetids"]))
    with pytest.raises(mlcc.MlccError, match="leaf_targetids"):
        mlcc.compile(tree_model(wrong, arrays, FLOAT, 3), out_dir=tmp_path / "t", build=False)


# ---- TfIdfVectorizer -----------------------------------------------------------------------------------

POOL = {
    "pool_int64s": [2, 3, 5, 4, 5, 6, 7, 8, 6, 7],  # unigrams [2, 3, 5, 4], bigrams [5 6] [7 8] [6 7]
    "ngram_counts": [0, 4],
    "ngram_indexes": [0, 1, 2, 3, 4, 5, 6],
}

# (shape, element type, attributes)
TFIDF = {
    "tf_unigrams_and_bigrams_skip2": ((2, 9), INT64, {"mode": "TF", "min_gram_length": 1, "max_gram_length": 2,
                                                      "max_skip_count": 2}),
    "tf_bigrams_only_1d": ((12,), INT32, {"mode": "TF", "min_gram_length": 2, "max_gram_length": 2,
                                          "max_skip_count": 0}),
    "idf_weights": ((3, 8), INT32, {"mode": "IDF", "min_gram_length": 1, "max_gram_length": 2, "max_skip_count": 1,
                                    "weights": [0.5, 1, 2, 3, 4, 5, 6.5]}),
    "idf_no_weights": ((3, 8), INT64, {"mode": "IDF", "min_gram_length": 1, "max_gram_length": 1,
                                       "max_skip_count": 3}),
    "tfidf_weights_skip5": ((2, 10), INT64, {"mode": "TFIDF", "min_gram_length": 1, "max_gram_length": 2,
                                             "max_skip_count": 5, "weights": [1, 0.5, 2, 0.25, 3, 1.5, 2]}),
    "tfidf_no_weights": ((4, 6), INT32, {"mode": "TFIDF", "min_gram_length": 2, "max_gram_length": 2,
                                         "max_skip_count": 1}),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(TFIDF))
def test_tfidf_matches_onnxruntime(name, tmp_path):
    shape, elem, attrs = TFIDF[name]
    x = np.random.default_rng(len(name)).integers(2, 9, size=shape).astype(helper.tensor_dtype_to_np_dtype(elem))
    node = helper.make_node("TfIdfVectorizer", ["x"], ["y"], **POOL, **attrs)
    check(model([node], [("x", elem, shape)], [("y", FLOAT)], opset=21), {"x": x}, tmp_path)


def test_tfidf_string_pool_is_unsupported(tmp_path):
    node = helper.make_node(
        "TfIdfVectorizer", ["x"], ["y"], mode="TF", min_gram_length=1, max_gram_length=1, max_skip_count=0,
        ngram_counts=[0], ngram_indexes=[0, 1], pool_strings=["a", "b"],
    )  # fmt: skip
    m = model([node], [("x", INT64, [4])], [("y", FLOAT)], opset=21)
    with pytest.raises(UnsupportedError, match="pool_strings"):
        mlcc.compile(m, out_dir=tmp_path, build=False)


# ---- constant folding and the strict compile checks ----------------------------------------------------


def folded_models() -> list[onnx.ModelProto]:
    """Each op on a constant input: the node folds to its numpy reference at compile time."""
    rng = np.random.default_rng(5)
    attrs, arrays = random_forest(3, 3, 3, 2)
    tree = tree_model(attrs, arrays, FLOAT, 3, n_rows=6, aggregate_function=3)
    tree.graph.ClearField("input")
    tree.graph.initializer.append(numpy_helper.from_array(tree_inputs(3, 6, 3, np.float32), "x"))
    x = rng.standard_normal((2, 3, 3)).astype(np.float32)
    tokens = rng.integers(2, 9, size=(2, 9)).astype(np.int64)
    const = lambda name, v: [numpy_helper.from_array(v, name)]  # noqa: E731
    tfidf = helper.make_node("TfIdfVectorizer", ["t"], ["y"], **POOL, **TFIDF["tfidf_weights_skip5"][2])
    return [
        tree,
        model([helper.make_node("Det", ["x"], ["y"])], [], [("y", FLOAT)], const("x", x), opset=22),
        model([helper.make_node("BitCast", ["x"], ["y"], to=INT32)], [], [("y", INT32)], const("x", x)),
        model([tfidf], [], [("y", FLOAT)], const("t", tokens), opset=21),
        model(
            [helper.make_node("Binarizer", ["x"], ["b"], domain=ML, threshold=0.1),
             helper.make_node("ArrayFeatureExtractor", ["b", "i"], ["y"], domain=ML)],
            [], [("y", FLOAT)], const("x", x) + const("i", np.array([2, 0], np.int64)), ml=1,
        ),
    ]  # fmt: skip


@pytest.mark.parametrize("index", range(5))
def test_folded_reference_matches_onnxruntime(index, tmp_path):
    check(folded_models()[index], {}, tmp_path, rtol=1e-5, atol=1e-6)
    source = (tmp_path / "out" / "model.c").read_text()
    for kernel in ("tree_ensemble", "det", "bitcast", "tfidf", "binarizer", "arrayfeatureextractor"):
        assert f"_{kernel}(" not in source, f"{kernel} not folded"


def all_ops_model() -> onnx.ModelProto:
    """One model with every op and the interesting kernel variants, for the strict compile checks."""
    attrs, arrays = random_forest(2, 3, 4, 3)
    tensors = {k: numpy_helper.from_array(np.array(v, np.float32), k) for k, v in arrays.items()}
    nodes = [
        helper.make_node("BitCast", ["x"], ["bc"], to=INT32),
        helper.make_node("BitCast", ["u"], ["bb"], to=TensorProto.BOOL),
        helper.make_node("Det", ["m"], ["det"]),
        helper.make_node("Binarizer", ["x"], ["bin"], domain=ML, threshold=0.5),
        helper.make_node("ArrayFeatureExtractor", ["x", "idx"], ["afe"], domain=ML),
        helper.make_node("TfIdfVectorizer", ["tok"], ["tf"], **POOL, **TFIDF["idf_weights"][2]),
    ]
    for agg, transform in ((0, 1), (2, 2), (3, 3), (1, 4)):
        out = f"tree{agg}"
        node = helper.make_node(
            "TreeEnsemble", ["x"], [out], domain=ML, aggregate_function=agg, post_transform=transform, **attrs,
            **tensors,
        )  # fmt: skip
        nodes.append(node)
    outs = ["bc", "bb", "det", "bin", "afe", "tf", "tree0", "tree2", "tree3", "tree1"]
    graph = helper.make_graph(
        nodes,
        "ml_linalg",
        [
            helper.make_tensor_value_info("x", FLOAT, [5, 4]),
            helper.make_tensor_value_info("u", TensorProto.UINT8, [6]),
            helper.make_tensor_value_info("m", DOUBLE, [3, 4, 4]),
            helper.make_tensor_value_info("idx", INT64, [2]),
            helper.make_tensor_value_info("tok", INT32, [2, 7]),
        ],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26), helper.make_opsetid(ML, 5)])


KERNELS = ("bitcast", "det", "binarizer", "arrayfeatureextractor", "tfidf", "tree_ensemble")


def test_generated_c_compiles_without_warnings(tmp_path):
    source = build_c_strictly(all_ops_model(), tmp_path)
    assert all(f"_{k}(" in source for k in KERNELS), [k for k in KERNELS if f"_{k}(" not in source]


@NEEDS_NVCC
def test_generated_cuda_compiles_cleanly_for_sm90(tmp_path):
    source, ptxas = compile_cuda_strictly(all_ops_model(), tmp_path)
    assert "cudaGraphLaunch" in source and "static __device__ const" in source
    for kernel in KERNELS:
        assert f"_{kernel}" in ptxas, f"ptxas compiled no {kernel} kernel"
