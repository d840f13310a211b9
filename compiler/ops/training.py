"""The optimizers of ai.onnx.preview.training (opset 1): Adagrad, Adam and Momentum (standard and nesterov),
on the "optimizer" kernel family (one kernel per optimized tensor, writing all its new states in one pass).

A node updates n tensors at once. Its inputs are R (learning rate) and T (update count), both scalars read at
run time, then the n tensors of each state in turn (X1..Xn, G1..Gn, then V and/or H); its outputs are the n
new tensors of each updated state in the same order. The update is computed in double, as onnx's reference
promotes it, and rounded once to the tensors' type.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.dtypes import FLOAT32, FLOAT64, INT64
from ..ir.graph import Node
from .common import c_literal, need_input
from .registry import Kernel, OpDef, register

DOMAIN = "ai.onnx.preview.training"


def _lit(value: float) -> str:
    return c_literal(value, FLOAT64)


class _Optimizer(OpDef):
    """Shared input layout, inference and lowering; subclasses give the states and the update rule."""

    states_in: tuple[str, ...] = ()  # per-tensor inputs after R and T, in order
    states_out: tuple[str, ...] = ()  # per-tensor outputs, in order

    def _attrs(self, node: Node) -> dict[str, float]:
        raise NotImplementedError

    def _count(self, node: Node) -> int:
        """n, the number of tensors the node updates (a ModelError where the inputs do not split evenly)."""
        groups = len(self.states_in)
        rest = len(node.inputs) - 2
        if rest < groups or rest % groups or any(v is None for v in node.inputs):
            raise ModelError(
                f"{node.op} {node.name!r}: expects R, T and then n tensors each of {', '.join(self.states_in)} "
                f"(2 + {groups}n inputs, none omitted), got {len(node.inputs)} inputs"
            )
        n = rest // groups
        if len(node.outputs) > len(self.states_out) * n:
            raise ModelError(
                f"{node.op} {node.name!r}: declares {len(node.outputs)} outputs; {n} tensors have at most "
                f"{len(self.states_out) * n} ({', '.join(self.states_out)} each)"
            )
        return n

    def _check(self, node: Node) -> int:
        n = self._count(node)
        r, t = need_input(node, 0), need_input(node, 1)
        if r.dtype not in (FLOAT32, FLOAT64) or r.size != 1:
            raise UnsupportedError(
                f"{node.op} {node.name!r}: R must be one float or double, got {r.dtype}{list(r.shape)}"
            )
        if t.dtype != INT64 or t.size != 1:
            raise ModelError(f"{node.op} {node.name!r}: T must be one int64, got {t.dtype}{list(t.shape)}")
        for i in range(n):
            group = [node.inputs[2 + k * n + i] for k in range(len(self.states_in))]
            x = group[0]
            if x.dtype not in (FLOAT32, FLOAT64):
                raise UnsupportedError(
                    f"{node.op} {node.name!r}: {x.name!r} is {x.dtype}; float and double are supported"
                )
            for name, v in zip(self.states_in[1:], group[1:]):
                if v.dtype != x.dtype or v.shape != x.shape:
                    raise ShapeError(
                        f"{node.op} {node.name!r}: {name} {v.name!r} is {v.dtype}{list(v.shape)}, "
                        f"but X {x.name!r} is {x.dtype}{list(x.shape)}"
                    )
        self._attrs(node)
        return n

    def infer(self, node):
        n = self._check(node)
        out = []
        for state in self.states_out:
            k = self.states_in.index(state)
            out += [(node.inputs[2 + k * n + i].dtype, node.inputs[2 + k * n + i].shape) for i in range(n)]
        return out

    def update(self, node: Node, r: float, t: int, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """numpy: the new states of one tensor from its states (by spec name), in float64."""
        raise NotImplementedError

    def reference(self, node, inputs):
        n = self._check(node)
        r, t = float(np.asarray(inputs[0]).reshape(-1)[0]), int(np.asarray(inputs[1]).reshape(-1)[0])
        news = []
        for i in range(n):
            tensors = {s: np.asarray(inputs[2 + k * n + i], np.float64) for k, s in enumerate(self.states_in)}
            news.append(self.update(node, r, t, tensors))
        dtypes = [inputs[2 + i].dtype for i in range(n)]
        return [news[i][state].astype(dtypes[i]) for state in self.states_out for i in range(n)]

    def rule(self, node: Node) -> tuple[list[str], list[str], dict[str, str]]:
        """C text of the update: statements run once (over r, t), per element (over the states' lowercase
        names, read as double), and the expression of each new state."""
        raise NotImplementedError

    def lower(self, node):
        n = self._check(node)
        once, each, new = self.rule(node)
        kernels = []
        for i in range(n):
            group = [node.inputs[2 + k * n + i] for k in range(len(self.states_in))]
            size = group[0].size
            outs = [
                (state, node.outputs[j * n + i])
                for j, state in enumerate(self.states_out)
                if j * n + i < len(node.outputs)
            ]
            if size == 0 or not outs:
                continue
            ctype = group[0].dtype.c
            body = [f"const double {s.lower()} = (double){s}[i];" for s in self.states_in]
            body += each
            body += [f"{s}_new[i] = ({ctype})({new[s]});" for s, _ in outs]
            scalars = ["const double r = (double)R[0];", "const int64_t t = T[0];", *once]
            params = {"n": size, "scalars": scalars, "body": body, "work_items": size}
            names = ["R", "T", *self.states_in, *(f"{s}_new" for s, _ in outs)]
            kernels.append(
                Kernel(
                    "optimizer",
                    node.op.lower(),
                    [node.inputs[0], node.inputs[1], *group],
                    [v for _, v in outs],
                    params,
                    names,
                )
            )
        return kernels


def _float_attr(node: Node, key: str, default: float | None) -> float:
    value = node.attr(key, default)
    if value is None:
        raise ModelError(f"{node.op} {node.name!r}: attribute {key} is required")
    return float(value)


@register("Adagrad", since=1, domain=DOMAIN)
class Adagrad(_Optimizer):
    states_in = ("X", "G", "H")
    states_out = ("X", "H")

    def _attrs(self, node):
        return {
            "decay": _float_attr(node, "decay_factor", 0.0),
            "eps": _float_attr(node, "epsilon", 1e-6),
            "norm": _float_attr(node, "norm_coefficient", 0.0),
        }

    def update(self, node, r, t, s):
        a = self._attrs(node)
        rate = r / (1 + t * a["decay"])
        g = a["norm"] * s["X"] + s["G"]
        h = s["H"] + g * g
        return {"X": s["X"] - rate * g / (np.sqrt(h) + a["eps"]), "H": h}

    def rule(self, node):
        a = {k: _lit(v) for k, v in self._attrs(node).items()}
        once = [f"const double rate = r / (1 + (double)t * {a['decay']});"]
        each = [f"const double gr = {a['norm']} * x + g;", "const double hn = h + gr * gr;"]
        return once, each, {"X": f"x - rate * gr / (sqrt(hn) + {a['eps']})", "H": "hn"}


@register("Adam", since=1, domain=DOMAIN)
class Adam(_Optimizer):
    states_in = ("X", "G", "V", "H")
    states_out = ("X", "V", "H")

    def _attrs(self, node):
        return {
            "alpha": _float_attr(node, "alpha", 0.9),
            "beta": _float_attr(node, "beta", 0.999),
            "eps": _float_attr(node, "epsilon", 1e-6),
            "norm": _float_attr(node, "norm_coefficient", 0.0),
            "post": _float_attr(node, "norm_coefficient_post", 0.0),
        }

    def update(self, node, r, t, s):
        a = self._attrs(node)
        g = a["norm"] * s["X"] + s["G"]
        v = a["alpha"] * s["V"] + (1 - a["alpha"]) * g
        h = a["beta"] * s["H"] + (1 - a["beta"]) * g * g
        rate = r * np.sqrt(1 - a["beta"] ** t) / (1 - a["alpha"] ** t) if t > 0 else r
        x = s["X"] - rate * (v / (np.sqrt(h) + a["eps"]))
        return {"X": (1 - a["post"]) * x, "V": v, "H": h}

    def rule(self, node):
        a = {k: _lit(v) for k, v in self._attrs(node).items()}
        # Bias correction of both moments from the second update on (T > 0).
        once = [
            f"const double rate = t > 0 ? r * sqrt(1 - pow({a['beta']}, (double)t)) "
            f"/ (1 - pow({a['alpha']}, (double)t)) : r;"
        ]
        each = [
            f"const double gr = {a['norm']} * x + g;",
            f"const double vn = {a['alpha']} * v + (1 - {a['alpha']}) * gr;",
            f"const double hn = {a['beta']} * h + (1 - {a['beta']}) * (gr * gr);",
        ]
        x_new = f"(1 - {a['post']}) * (x - rate * (vn / (sqrt(hn) + {a['eps']})))"
        return once, each, {"X": x_new, "V": "vn", "H": "hn"}


@register("Momentum", since=1, domain=DOMAIN)
class Momentum(_Optimizer):
    states_in = ("X", "G", "V")
    states_out = ("X", "V")

    def _attrs(self, node):
        mode = node.attr("mode")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode not in ("standard", "nesterov"):
            raise ModelError(f"Momentum {node.name!r}: mode must be 'standard' or 'nesterov'")
        return {
            "alpha": _float_attr(node, "alpha", None),
            "beta": _float_attr(node, "beta", None),
            "norm": _float_attr(node, "norm_coefficient", None),
            "nesterov": float(mode == "nesterov"),
        }

    def update(self, node, r, t, s):
        a = self._attrs(node)
        g = a["norm"] * s["X"] + s["G"]
        v = a["alpha"] * s["V"] + (a["beta"] if t > 0 else 1.0) * g
        step = g + a["alpha"] * v if a["nesterov"] else v
        return {"X": s["X"] - r * step, "V": v}

    def rule(self, node):
        a = self._attrs(node)
        alpha = _lit(a["alpha"])
        # The gradient's coefficient is 1 at the first update (T == 0).
        once = [f"const double gain = t > 0 ? {_lit(a['beta'])} : 1.0;"]
        each = [f"const double gr = {_lit(a['norm'])} * x + g;", f"const double vn = {alpha} * v + gain * gr;"]
        step = f"(gr + {alpha} * vn)" if a["nesterov"] else "vn"
        return once, each, {"X": f"x - r * {step}", "V": "vn"}
