"""The benchmark zoo's ONNX graphs as PyTorch modules, so that PyTorch eager and torch.compile run the very model
(same graph, same weights) that mlcc compiles. Covers the operators bench/zoo.py emits, in the forms it emits
them; anything else raises NotImplementedError. Not part of mlcc: bench/gpu.py's baseline only.

    module = OnnxModule(onnx_model).to("cuda")
    outputs = module(*inputs)          # inputs in the graph's order, outputs as a tuple in its order
"""

from __future__ import annotations

import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _padding(a: dict, rank: int) -> list[int]:
    pads = list(a.get("pads", [0] * (2 * rank)))
    if pads[:rank] != pads[rank:]:
        raise NotImplementedError("asymmetric pads")
    return pads[:rank]


def _conv(x, w, b=None, **a):
    rank = x.dim() - 2
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError("Conv auto_pad")
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]
    return conv(
        x, w, b, a.get("strides", [1] * rank), _padding(a, rank), a.get("dilations", [1] * rank), a.get("group", 1)
    )


def _max_pool(x, **a):
    rank = x.dim() - 2
    pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[rank]
    k = a["kernel_shape"]
    return pool(
        x,
        k,
        a.get("strides", [1] * rank),
        _padding(a, rank),
        a.get("dilations", [1] * rank),
        a.get("ceil_mode", 0) == 1,
    )


def _resize(x, roi=None, scales=None, sizes=None, **a):
    if a.get("mode", b"nearest") not in (b"nearest", "nearest") or not scales:
        raise NotImplementedError("Resize other than nearest by scales")
    factors = [float(s) for s in scales]
    if factors[:2] != [1.0, 1.0] or any(f != int(f) for f in factors[2:]):
        raise NotImplementedError("Resize by non-integer spatial scales")
    # integer up-scaling: ONNX's half_pixel + round_prefer_floor picks the same source pixel as torch's nearest
    return F.interpolate(x, scale_factor=factors[2:], mode="nearest")


def _unsqueeze(x, axes):
    rank = x.dim() + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = x.unsqueeze(axis)
    return x


def _reshape(x, shape):
    return x.reshape([x.shape[i] if d == 0 else d for i, d in enumerate(shape)])


# Inputs that are shapes, axes or scales: read from the initializers once, passed as Python lists (so that
# torch.compile sees constants, not tensors it would have to read back).
STATIC = {
    "Reshape": {1: "shape"},
    "Unsqueeze": {1: "axes"},
    "Split": {1: "split"},
    "ReduceSum": {1: "axes"},
    "Resize": {1: "roi", 2: "scales", 3: "sizes"},
}

_DTYPES = {
    onnx.TensorProto.FLOAT: torch.float32,
    onnx.TensorProto.INT64: torch.int64,
    onnx.TensorProto.INT32: torch.int32,
}

OPS = {
    "Add": torch.add,
    "Sub": torch.sub,
    "Mul": torch.mul,
    "Div": torch.div,
    "MatMul": torch.matmul,
    "Erf": torch.erf,
    "Sigmoid": torch.sigmoid,
    "Relu": torch.relu,
    "Identity": lambda x: x,
    "Gather": lambda x, i, axis=0: torch.index_select(x, axis, i.reshape(-1)).reshape(
        *x.shape[:axis], *i.shape, *x.shape[axis + 1 :]
    ),
    "Cast": lambda x, to: x.to(_DTYPES[to]),
    "Unsqueeze": _unsqueeze,
    "Reshape": _reshape,
    "Transpose": lambda x, perm: x.permute(*perm),
    "Softmax": lambda x, axis=-1: torch.softmax(x, axis),
    "LayerNormalization": lambda x, w, b=None, axis=-1, epsilon=1e-5: F.layer_norm(x, x.shape[axis:], w, b, epsilon),
    "BatchNormalization": lambda x, s, b, mean, var, epsilon=1e-5, momentum=0.9: F.batch_norm(
        x, mean, var, s, b, False, 0.0, epsilon
    ),
    "Conv": _conv,
    "MaxPool": _max_pool,
    "Resize": _resize,
    "Concat": lambda *xs, axis: torch.cat(xs, axis),
    "Split": lambda x, split, axis=0: torch.split(x, split, axis),
    "ReduceSum": lambda x, axes, keepdims=1: x.sum(dim=axes, keepdim=keepdims == 1),
    "GlobalAveragePool": lambda x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True),
    "Flatten": lambda x, axis=1: x.reshape(int(torch.tensor(x.shape[:axis]).prod()), -1),
    "Gemm": lambda a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0: torch.addmm(
        c if c is not None else torch.zeros((), device=a.device),
        a.t() if transA else a,
        b.t() if transB else b,
        beta=beta,
        alpha=alpha,
    ),
}


class OnnxModule(torch.nn.Module):
    """Runs one ONNX graph with torch operators; the initializers are buffers, so .to(device) moves them."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__()
        graph = model.graph
        arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        static = {n.input[i] for n in graph.node for i in STATIC.get(n.op_type, {}) if i < len(n.input)}
        self.names: dict[str, str] = {}
        # 0-d float constants (a scale, an epsilon) as Python numbers, as a PyTorch model writes them
        self.scalars = {n: float(a) for n, a in arrays.items() if a.ndim == 0 and a.dtype.kind == "f"}
        for name, array in arrays.items():
            if name in static or name in self.scalars:
                continue
            self.names[name] = f"w{len(self.names)}"
            self.register_buffer(self.names[name], torch.from_numpy(array.copy()))
        self.inputs = [v.name for v in graph.input if v.name not in self.names]
        self.outputs = [v.name for v in graph.output]
        self.nodes = []
        for node in graph.node:
            if node.op_type not in OPS or node.domain not in ("", "ai.onnx"):
                raise NotImplementedError(f"{node.op_type} has no torch form in bench/onnx_torch.py")
            attrs, ins = _attrs(node), list(node.input)
            for i, attr in STATIC.get(node.op_type, {}).items():
                if i < len(ins) and ins[i]:
                    if ins[i] not in arrays:
                        raise NotImplementedError(f"{node.op_type} with a computed {attr}")
                    attrs[attr] = arrays[ins[i]].tolist()
            ins = [n for i, n in enumerate(ins) if i not in STATIC.get(node.op_type, {})]
            self.nodes.append((node.op_type, ins, list(node.output), attrs))

    def forward(self, *args: torch.Tensor):
        env: dict[str, torch.Tensor | None] = dict(zip(self.inputs, args))
        env[""] = None
        for name, buffer in self.names.items():
            env[name] = getattr(self, buffer)
        env.update(self.scalars)
        for op, ins, outs, attrs in self.nodes:
            result = OPS[op](*(env[n] for n in ins), **attrs)
            for name, value in zip(outs, result if isinstance(result, (tuple, list)) else (result,)):
                env[name] = value
        return tuple(env[n] for n in self.outputs)
