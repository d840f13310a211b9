"""Benchmark and test models that no file ships: a BERT-style transformer encoder, a YOLO-style detector and
a MobileNetV2, built with onnx.helper from seeded random weights (so every build is byte-identical).

    bert_encoder(layers=6, hidden=384, heads=6, seq=128, batch=1)
    yolo_detector(size=320, width=16, classes=80, batch=1)
    mobilenet_v2(size=224, width=1.0, classes=1000, batch=1)
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Builder:
    """Nodes, initializers and fresh names for one graph."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value, hint: str = "c") -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, shape, scale: float, hint: str = "w") -> str:
        return self.const((self.rng.standard_normal(shape) * scale).astype(np.float32), hint)

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs) -> str | list[str]:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name(op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def model(self, name: str, inputs, outputs, opset: int = 17) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="mlcc-bench")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def bert_encoder(
    layers: int = 6, hidden: int = 384, heads: int = 6, seq: int = 128, batch: int = 1, vocab: int = 1000
) -> onnx.ModelProto:
    """Embeddings (word + position, LayerNorm), then `layers` post-norm encoder blocks: multi-head attention
    with an additive padding mask, residual + LayerNorm, an erf-GELU feed-forward of 4 * hidden, residual +
    LayerNorm. Inputs input_ids and attention_mask (int64 [batch, seq]); output last_hidden_state."""
    b = _Builder(seed=11)
    d = hidden // heads
    ids, mask = "input_ids", "attention_mask"

    def layer_norm(x: str) -> str:
        return b.op(
            "LayerNormalization",
            [x, b.const(np.ones(hidden, np.float32)), b.const(np.zeros(hidden, np.float32))],
            axis=-1,
            epsilon=1e-12,
        )  # noqa: E501

    def linear(x: str, n_in: int, n_out: int) -> str:
        return b.op("Add", [b.op("MatMul", [x, b.weight((n_in, n_out), n_in**-0.5)]), b.weight((n_out,), 0.02)])

    def heads_first(x: str) -> str:  # [B, S, H*D] -> [B, H, S, D]
        r = b.op("Reshape", [x, b.const(np.array([batch, seq, heads, d], np.int64))])
        return b.op("Transpose", [r], perm=[0, 2, 1, 3])

    word = b.op("Gather", [b.weight((vocab, hidden), 0.5, "word_embeddings"), ids], axis=0)
    pos = b.op(
        "Gather", [b.weight((seq, hidden), 0.5, "position_embeddings"), b.const(np.arange(seq, dtype=np.int64)[None])]
    )
    x = layer_norm(b.op("Add", [word, pos]))
    # Additive mask: 0 where attended, -10000 at padding; [B, 1, 1, S].
    m = b.op("Cast", [b.op("Unsqueeze", [mask, b.const(np.array([1, 2], np.int64))])], to=TensorProto.FLOAT)
    bias = b.op("Mul", [b.op("Sub", [b.const(np.float32(1.0)), m]), b.const(np.float32(-10000.0))])
    for _ in range(layers):
        q, k, v = (heads_first(linear(x, hidden, hidden)) for _ in range(3))
        scores = b.op(
            "Div", [b.op("MatMul", [q, b.op("Transpose", [k], perm=[0, 1, 3, 2])]), b.const(np.float32(d**0.5))]
        )
        probs = b.op("Softmax", [b.op("Add", [scores, bias])], axis=-1)
        ctx = b.op("Transpose", [b.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = b.op("Reshape", [ctx, b.const(np.array([batch, seq, hidden], np.int64))])
        x = layer_norm(b.op("Add", [x, linear(ctx, hidden, hidden)]))
        h = linear(x, hidden, 4 * hidden)
        erf = b.op("Erf", [b.op("Div", [h, b.const(np.float32(2**0.5))])])
        gelu = b.op("Mul", [b.op("Mul", [h, b.op("Add", [erf, b.const(np.float32(1.0))])]), b.const(np.float32(0.5))])
        x = layer_norm(b.op("Add", [x, linear(gelu, 4 * hidden, hidden)]))
    b.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    return b.model(
        f"bert_l{layers}_h{hidden}_s{seq}",
        [helper.make_tensor_value_info(n, TensorProto.INT64, [batch, seq]) for n in (ids, mask)],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [batch, seq, hidden])],
    )


def yolo_detector(size: int = 320, width: int = 16, classes: int = 80, batch: int = 1) -> onnx.ModelProto:
    """A YOLOv8-style detector: Conv+BatchNorm+SiLU blocks, a stride-32 backbone with split/concat (C2f)
    blocks, SPPF (chained 5x5 max pools), an upsampling neck (Resize, Concat) and a head on three scales whose
    box branch decodes a 16-bin distribution (Softmax, expectation) and whose class branch is a Sigmoid.
    Input images [batch, 3, size, size]; output detections [batch, 4 + classes, anchors]."""
    b = _Builder(seed=5)

    def conv(x: str, c_in: int, c_out: int, k: int = 3, s: int = 1, act: bool = True) -> str:
        y = b.op(
            "Conv",
            [x, b.weight((c_out, c_in, k, k), (c_in * k * k) ** -0.5)],
            kernel_shape=[k, k],
            strides=[s, s],
            pads=[k // 2] * 4,
        )  # noqa: E501
        if not act:
            return b.op("Add", [y, b.weight((1, c_out, 1, 1), 0.1)])
        stats = [b.const((1 + 0.1 * b.rng.standard_normal(c_out)).astype(np.float32)), b.weight((c_out,), 0.1)]
        stats += [b.weight((c_out,), 0.1), b.const(b.rng.uniform(0.5, 1.5, c_out).astype(np.float32))]
        y = b.op("BatchNormalization", [y, *stats], epsilon=1e-3)
        return b.op("Mul", [y, b.op("Sigmoid", [y])])  # SiLU

    def c2f(x: str, c_in: int, c_out: int, n: int = 1) -> str:
        half = c_out // 2
        parts = b.op("Split", [conv(x, c_in, c_out, 1), b.const(np.array([half, half], np.int64))], n_out=2, axis=1)
        outs = list(parts)
        for _ in range(n):
            outs.append(b.op("Add", [outs[-1], conv(conv(outs[-1], half, half), half, half)]))
        return conv(b.op("Concat", outs, axis=1), (2 + n) * half, c_out, 1)

    def up(x: str) -> str:
        return b.op("Resize", [x, "", b.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest")

    w = width
    x = conv("images", 3, w, s=2)
    x = c2f(conv(x, w, 2 * w, s=2), 2 * w, 2 * w)
    p3 = c2f(conv(x, 2 * w, 4 * w, s=2), 4 * w, 4 * w, 2)
    p4 = c2f(conv(p3, 4 * w, 8 * w, s=2), 8 * w, 8 * w, 2)
    p5 = c2f(conv(p4, 8 * w, 16 * w, s=2), 16 * w, 16 * w)
    s = conv(p5, 16 * w, 8 * w, 1)  # SPPF
    pools = [s]
    for _ in range(3):
        pools.append(b.op("MaxPool", [pools[-1]], kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2]))
    p5 = conv(b.op("Concat", pools, axis=1), 32 * w, 16 * w, 1)
    n4 = c2f(b.op("Concat", [up(p5), p4], axis=1), 24 * w, 8 * w)
    n3 = c2f(b.op("Concat", [up(n4), p3], axis=1), 12 * w, 4 * w)
    heads = []
    for feat, c in ((n3, 4 * w), (n4, 8 * w), (p5, 16 * w)):
        box = conv(conv(conv(feat, c, 4 * w), 4 * w, 4 * w), 4 * w, 64, 1, act=False)
        cls = conv(conv(conv(feat, c, 4 * w), 4 * w, 4 * w), 4 * w, classes, 1, act=False)
        both = b.op("Concat", [box, cls], axis=1)  # [B, 64 + classes, H, W]
        heads.append(b.op("Reshape", [both, b.const(np.array([batch, 64 + classes, -1], np.int64))]))
    allh = b.op("Concat", heads, axis=2)  # the three scales joined along the anchors
    box, cls = b.op("Split", [allh, b.const(np.array([64, classes], np.int64))], n_out=2, axis=1)
    dist = b.op("Softmax", [b.op("Reshape", [box, b.const(np.array([batch, 4, 16, -1], np.int64))])], axis=2)
    bins = b.const(np.arange(16, dtype=np.float32).reshape(1, 1, 16, 1))
    ltrb = b.op("ReduceSum", [b.op("Mul", [dist, bins]), b.const(np.array([2], np.int64))], keepdims=0)
    b.nodes.append(helper.make_node("Concat", [ltrb, b.op("Sigmoid", [cls])], ["detections"], axis=1, name="output"))
    anchors = sum((size // st) ** 2 for st in (8, 16, 32))
    return b.model(
        f"yolo_{size}",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("detections", TensorProto.FLOAT, [batch, 4 + classes, anchors])],
    )


def mobilenet_v2(size: int = 224, width: float = 1.0, classes: int = 1000, batch: int = 1) -> onnx.ModelProto:
    """A MobileNetV2: a 3x3 stride-2 stem, 17 inverted residual blocks (1x1 expansion + ReLU6, 3x3 depthwise
    + ReLU6, linear 1x1 projection, residual Add where shapes allow), a 1x1 conv to 1280 channels, global
    average pooling and a classifier. BatchNorm is folded into the conv biases, as exported models have it.
    Input images [batch, 3, size, size]; output logits [batch, classes]."""
    b = _Builder(seed=3)

    def conv(x: str, c_in: int, c_out: int, k: int = 1, s: int = 1, group: int = 1, relu6: bool = True) -> str:
        w = b.weight((c_out, c_in // group, k, k), (c_in // group * k * k) ** -0.5 * 1.4)
        y = b.op(
            "Conv",
            [x, w, b.weight((c_out,), 0.05)],
            kernel_shape=[k, k],
            strides=[s, s],
            pads=[k // 2] * 4,
            group=group,
        )
        return b.op("Clip", [y, b.const(np.float32(0.0)), b.const(np.float32(6.0))]) if relu6 else y

    def channels(c: int) -> int:
        return max(8, int(c * width + 4) // 8 * 8)

    c = channels(32)
    x = conv("images", 3, c, 3, 2)
    for t, c_out, n, s in (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ):
        c_out = channels(c_out)
        for i in range(n):
            stride = s if i == 0 else 1
            h = conv(x, c, c * t) if t != 1 else x
            h = conv(h, c * t, c * t, 3, stride, group=c * t)
            h = conv(h, c * t, c_out, relu6=False)
            x = b.op("Add", [x, h]) if stride == 1 and c == c_out else h
            c = c_out
    x = conv(x, c, 1280)
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    b.nodes.append(
        helper.make_node(
            "Gemm",
            [x, b.weight((classes, 1280), 1280**-0.5), b.weight((classes,), 0.01)],
            ["logits"],
            transB=1,
            name="classifier",
        )
    )
    return b.model(
        "mobilenet_v2",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        opset=13,
    )
