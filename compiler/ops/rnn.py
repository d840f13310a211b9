"""Recurrent layers: RNN, GRU and LSTM (every attribute: directions, layouts, sequence_lens, initial states,
peepholes, clip, linear_before_reset, input_forget, and the activation functions with their alpha/beta).

One "rnn" kernel runs a whole layer: for each direction and batch entry it walks the sequence (backwards for
the reverse direction, over the first sequence_lens[b] steps only), computes the gate pre-activations
x_t W^T + h_{t-1} R^T + Wb + Rb into a scratch row, applies the cell, and writes Y (zero past a sequence's
end), Y_h and Y_c. The state lives in fixed-size local arrays (shared memory on CUDA, one block per
direction and batch entry, threads over the hidden units). Gate order as ONNX: RNN i; GRU z, r, h;
LSTM i, o, f, c (peepholes i, o, f).
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import INT32, INT64, DType
from ..ir.graph import Node
from .common import c_literal, cmath, need_input
from .registry import Kernel, OpDef, register

# name -> (number of parameters taken from activation_alpha/beta, C expression over x given a, b and the type)
_ACTIVATIONS = {
    "relu": (0, lambda x, a, b, t: f"({x} > 0 ? {x} : 0)"),
    "tanh": (0, lambda x, a, b, t: f"{cmath('tanh', t)}({x})"),
    "sigmoid": (0, lambda x, a, b, t: f"(1 / (1 + {cmath('exp', t)}(-({x}))))"),
    "affine": (2, lambda x, a, b, t: f"({a} * {x} + {b})"),
    "leakyrelu": (1, lambda x, a, b, t: f"({x} >= 0 ? {x} : {a} * {x})"),
    "thresholdedrelu": (1, lambda x, a, b, t: f"({x} > {a} ? {x} : 0)"),
    "scaledtanh": (2, lambda x, a, b, t: f"({a} * {cmath('tanh', t)}({b} * {x}))"),
    "hardsigmoid": (2, lambda x, a, b, t: f"{cmath('fmax', t)}(0, {cmath('fmin', t)}(1, {a} * {x} + {b}))"),
    "elu": (1, lambda x, a, b, t: f"({x} >= 0 ? {x} : {a} * ({cmath('exp', t)}({x}) - 1))"),
    "softsign": (0, lambda x, a, b, t: f"({x} / (1 + {cmath('fabs', t)}({x})))"),
    "softplus": (0, lambda x, a, b, t: f"{cmath('log', t)}(1 + {cmath('exp', t)}({x}))"),
}
_DEFAULT_ALPHA = {"leakyrelu": 0.01, "thresholdedrelu": 1.0, "elu": 1.0, "hardsigmoid": 0.2, "affine": 1.0}
_DEFAULT_BETA = {"hardsigmoid": 0.5, "affine": 0.0, "scaledtanh": 1.0}

MAX_SCRATCH = 48 << 10  # bytes of state and gate rows per (direction, batch entry): CUDA's static shared memory
_CELLS = {"RNN": (1, ["Tanh"]), "GRU": (3, ["Sigmoid", "Tanh"]), "LSTM": (4, ["Sigmoid", "Tanh", "Tanh"])}


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class _Recurrent(OpDef):
    def _config(self, node: Node) -> dict:
        gates, default_acts = _CELLS[node.op]
        x, w, r = need_input(node, 0), need_input(node, 1), need_input(node, 2)
        layout = node.attr("layout", 0)
        direction = _s(node.attr("direction", "forward"))
        if direction not in ("forward", "reverse", "bidirectional"):
            raise ModelError(f"{node.op} {node.name!r}: unknown direction {direction!r}")
        dirs = 2 if direction == "bidirectional" else 1
        if x.rank != 3 or w.rank != 3 or r.rank != 3:
            raise ShapeError(f"{node.op} {node.name!r}: X, W and R must be 3-D")
        seq, batch, isz = (x.shape[1], x.shape[0], x.shape[2]) if layout else x.shape
        hidden = node.attr("hidden_size") or r.shape[-1]
        if w.shape != (dirs, gates * hidden, isz) or r.shape != (dirs, gates * hidden, hidden):
            raise ShapeError(
                f"{node.op} {node.name!r}: W {list(w.shape)} / R {list(r.shape)} do not fit {dirs} direction(s), "
                f"hidden size {hidden} and input size {isz}"
            )
        if not x.dtype.is_float or w.dtype != x.dtype or r.dtype != x.dtype:
            raise UnsupportedError(f"{node.op} {node.name!r}: element type {x.dtype} is not supported")
        state = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
        expect = {3: (dirs, 2 * gates * hidden), 4: (batch,), 5: state}
        expect.update({6: state, 7: (dirs, 3 * hidden)} if node.op == "LSTM" else {})
        for i, shape in expect.items():
            v = node.input(i)
            if v is not None and v.shape != shape:
                raise ShapeError(f"{node.op} {node.name!r}: input {i} is {list(v.shape)}, expected {list(shape)}")
        lens = node.input(4)
        if lens is not None and lens.dtype not in (INT32, INT64):
            raise ModelError(f"{node.op} {node.name!r}: sequence_lens must be int32")
        acts = [_s(a) for a in node.attr("activations") or []] or default_acts * dirs
        if len(acts) != len(default_acts) * dirs:
            raise ModelError(f"{node.op} {node.name!r}: {len(acts)} activations for {dirs} direction(s)")
        alphas, betas = list(node.attr("activation_alpha") or []), list(node.attr("activation_beta") or [])
        funcs = []
        for name in acts:
            key = name.lower()
            if key not in _ACTIVATIONS:
                raise UnsupportedError(f"{node.op} {node.name!r}: activation {name!r} is not supported")
            n = _ACTIVATIONS[key][0]
            a = alphas.pop(0) if n >= 1 and alphas else _DEFAULT_ALPHA.get(key, 1.0)
            b = betas.pop(0) if n >= 2 and betas else _DEFAULT_BETA.get(key, 0.0)
            funcs.append((key, float(a), float(b)))
        return {
            "gates": gates,
            "layout": layout,
            "dirs": dirs,
            "reverse": direction == "reverse",
            "seq": seq,
            "batch": batch,
            "input": isz,
            "hidden": hidden,
            "funcs": funcs,
            "clip": node.attr("clip"),
            "lbr": int(node.attr("linear_before_reset", 0)),
            "input_forget": int(node.attr("input_forget", 0)),
        }

    def infer(self, node):
        c = self._config(node)
        x = node.inputs[0]
        y = (
            (c["batch"], c["seq"], c["dirs"], c["hidden"])
            if c["layout"]
            else (c["seq"], c["dirs"], c["batch"], c["hidden"])
        )
        state = (c["batch"], c["dirs"], c["hidden"]) if c["layout"] else (c["dirs"], c["batch"], c["hidden"])
        outs = [(x.dtype, y), (x.dtype, state)] + ([(x.dtype, state)] if node.op == "LSTM" else [])
        return outs[: max(len(node.outputs), 1)]

    def reference(self, node, inputs):
        c = self._config(node)
        act = [lambda v, f=f: _np_act(f, v) for f in c["funcs"]]
        y, yh, yc = _np_run(node.op, c, act, inputs)
        return [y, yh, yc][: max(len(node.outputs), 1)]

    def lower(self, node):
        c = self._config(node)
        t: DType = node.inputs[0].dtype
        fn = []
        per_dir = len(_CELLS[node.op][1])
        for d in range(c["dirs"]):
            exprs = []
            for k in range(per_dir):
                key, a, b = c["funcs"][d * per_dir + k]
                exprs.append(_ACTIVATIONS[key][1]("v", c_literal(a, t), c_literal(b, t), t))
            fn.append(exprs)
        optional = {3: "B", 4: "L", 5: "H0", 6: "C0", 7: "P"}
        inputs, names = list(node.inputs[:3]), ["X", "W", "R"]
        for i, name in optional.items():
            if node.input(i) is not None:
                inputs.append(node.input(i))
                names.append(name)
        outs = [o for o in node.outputs]
        out_names = ["Y", "Y_h", "Y_c"][: len(outs)]
        params = {
            **{k: v for k, v in c.items() if k != "funcs"},
            "cell": node.op,
            "acts": fn,
            "ctype": t.c,
            "clip": None if c["clip"] is None else c_literal(float(c["clip"]), t),
            "has": sorted(names[3:]) + out_names,
            "work_items": c["dirs"] * c["batch"],
            "block_per_item": True,
        }
        scratch = (2 * c["gates"] + 3) * c["hidden"] * t.itemsize
        if scratch > MAX_SCRATCH:
            raise UnsupportedError(
                f"{node.op} {node.name!r}: hidden size {c['hidden']} needs {scratch} bytes of cell state; the rnn "
                f"kernel keeps at most {MAX_SCRATCH} (shared memory on CUDA)"
            )
        return [Kernel("rnn", node.op.lower(), inputs, outs, params, names + out_names)]


def _np_act(f, v):
    key, a, b = f
    with np.errstate(over="ignore"):
        return {
            "relu": lambda: np.maximum(v, 0),
            "tanh": lambda: np.tanh(v),
            "sigmoid": lambda: 1 / (1 + np.exp(-v)),
            "affine": lambda: a * v + b,
            "leakyrelu": lambda: np.where(v >= 0, v, a * v),
            "thresholdedrelu": lambda: np.where(v > a, v, 0),
            "scaledtanh": lambda: a * np.tanh(b * v),
            "hardsigmoid": lambda: np.clip(a * v + b, 0, 1),
            "elu": lambda: np.where(v >= 0, v, a * (np.exp(v) - 1)),
            "softsign": lambda: v / (1 + np.abs(v)),
            "softplus": lambda: np.log1p(np.exp(v)),
        }[key]()


def _np_run(cell: str, c: dict, act, inputs):
    """numpy reference of one layer (float64), same structure as the kernel."""
    get = lambda i: inputs[i] if len(inputs) > i and inputs[i] is not None else None  # noqa: E731
    x, w, r = (a.astype(np.float64) for a in inputs[:3])
    if c["layout"]:
        x = x.transpose(1, 0, 2)
    g, hs, dirs, n, seq = c["gates"], c["hidden"], c["dirs"], c["batch"], c["seq"]
    bias = get(3).astype(np.float64) if get(3) is not None else np.zeros((dirs, 2 * g * hs))
    lens = get(4) if get(4) is not None else np.full(n, seq)
    h0 = get(5).astype(np.float64) if get(5) is not None else np.zeros((dirs, n, hs))
    c0 = get(6).astype(np.float64) if get(6) is not None else np.zeros((dirs, n, hs))
    if c["layout"]:  # states are [batch, dirs, hidden]
        h0 = h0.transpose(1, 0, 2) if get(5) is not None else h0
        c0 = c0.transpose(1, 0, 2) if get(6) is not None else c0
    p = get(7).astype(np.float64) if get(7) is not None else np.zeros((dirs, 3 * hs))
    per_dir = len(_CELLS[cell][1])
    y = np.zeros((seq, dirs, n, hs))
    yh, yc = np.zeros((dirs, n, hs)), np.zeros((dirs, n, hs))
    clip = c["clip"]
    for d in range(dirs):
        f = act[d * per_dir : (d + 1) * per_dir]
        rev = c["reverse"] or d == 1
        for b in range(n):
            h, cs = h0[d, b].copy(), c0[d, b].copy()
            steps = int(lens[b])
            for step in range(steps):
                t = steps - 1 - step if rev else step
                pre = x[t, b] @ w[d].T + bias[d, : g * hs]  # input part with Wb
                rec = h @ r[d].T + bias[d, g * hs :]  # recurrent part with Rb
                cl = (lambda v: np.clip(v, -clip, clip)) if clip is not None else (lambda v: v)
                if cell == "RNN":
                    h = f[0](cl(pre + rec))
                elif cell == "GRU":
                    z = f[0](cl(pre[:hs] + rec[:hs]))
                    rr = f[0](cl(pre[hs : 2 * hs] + rec[hs : 2 * hs]))
                    if c["lbr"]:
                        hh = f[1](cl(pre[2 * hs :] + rr * rec[2 * hs :]))
                    else:
                        hh = f[1](cl(pre[2 * hs :] + (rr * h) @ r[d, 2 * hs :].T + bias[d, g * hs + 2 * hs :]))
                    h = (1 - z) * hh + z * h
                else:
                    s = pre + rec
                    i = f[0](cl(s[:hs] + p[d, :hs] * cs))
                    fg = 1 - i if c["input_forget"] else f[0](cl(s[2 * hs : 3 * hs] + p[d, 2 * hs :] * cs))
                    cs = fg * cs + i * f[1](cl(s[3 * hs :]))
                    o = f[0](cl(s[hs : 2 * hs] + p[d, hs : 2 * hs] * cs))
                    h = o * f[2](cs)
                y[t, d, b] = h
            yh[d, b], yc[d, b] = h, cs
    dt = inputs[0].dtype
    if c["layout"]:
        return y.transpose(2, 0, 1, 3).astype(dt), yh.transpose(1, 0, 2).astype(dt), yc.transpose(1, 0, 2).astype(dt)
    return y.astype(dt), yh.astype(dt), yc.astype(dt)


for _op, _since in (("RNN", [7, 14, 22]), ("GRU", [7, 14, 22]), ("LSTM", [7, 14, 22])):
    register(_op, since=_since)(type(_op, (_Recurrent,), {}))
