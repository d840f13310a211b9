"""Einsum: any equation of the ONNX spec (explicit or implicit output, repeated labels for diagonals, an
ellipsis with numpy broadcasting), on the "indexed" family.

Each output element loops over the contracted labels and sums the product of the operands, read at the
position that the output's and the loop's labels give (a label repeated within one operand reads its
diagonal). Floats accumulate in double, integers in 64 bits. The generic loop is exact for every equation;
matching equations to MatMul for speed is a later rewrite.
"""

from __future__ import annotations

import string

import numpy as np

from ..errors import ModelError, ShapeError, UnsupportedError
from ..ir.graph import Node
from .common import contiguous_strides
from .indexed import indexed_kernel
from .registry import OpDef, register

ELLIPSIS_LABELS = "0123456789"  # internal labels for the dims an ellipsis stands for, outermost first


def _parse(node: Node, shapes: list[tuple[int, ...]]):
    """(operand label lists, output labels, label -> size) with ellipses expanded."""
    eq = node.attr("equation", "")
    eq = (eq.decode() if isinstance(eq, bytes) else eq).replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ModelError(f"Einsum {node.name!r}: equation {eq!r} has {len(terms)} operands, the node {len(shapes)}")
    allowed = set(string.ascii_letters) | {"."}
    if not set(lhs.replace(",", "")) | set(rhs) <= allowed:
        raise ModelError(f"Einsum {node.name!r}: equation {eq!r} has characters other than letters, ',', '...'")
    ell_rank = 0
    for term, shape in zip(terms, shapes):
        letters = term.replace("...", "")
        if "." in letters or term.count("...") > 1:
            raise ModelError(f"Einsum {node.name!r}: malformed ellipsis in {term!r}")
        extra = len(shape) - len(letters)
        if extra < 0 or (extra and "..." not in term):
            raise ShapeError(f"Einsum {node.name!r}: term {term!r} does not fit an operand of shape {list(shape)}")
        ell_rank = max(ell_rank, extra if "..." in term else 0)
    if ell_rank > len(ELLIPSIS_LABELS):
        raise UnsupportedError(f"Einsum {node.name!r}: an ellipsis of more than {len(ELLIPSIS_LABELS)} dims")
    ell = ELLIPSIS_LABELS[:ell_rank]
    operands, sizes = [], {}
    for term, shape in zip(terms, shapes):
        n = len(shape) - len(term.replace("...", ""))
        labels = list(term.replace("...", "\0"))
        if "\0" in labels:
            at = labels.index("\0")
            labels[at : at + 1] = list(ell[ell_rank - n :])
        for label, d in zip(labels, shape):
            old = sizes.get(label, 1)
            if label in ell and (old == 1 or d == 1):  # the ellipsis broadcasts
                sizes[label] = max(old, d)
            elif label in sizes and old != d:
                raise ShapeError(f"Einsum {node.name!r}: label {label!r} is both {old} and {d}")
            else:
                sizes[label] = d
        operands.append(labels)
    if arrow:
        if rhs.count("...") > 1 or "." in rhs.replace("...", ""):
            raise ModelError(f"Einsum {node.name!r}: malformed ellipsis in output {rhs!r}")
        out = list(rhs.replace("...", "\0"))
        if "\0" in out:
            at = out.index("\0")
            out[at : at + 1] = list(ell)
        elif ell_rank:
            raise ModelError(f"Einsum {node.name!r}: the output must keep the ellipsis dims")
        if len(set(out)) != len(out) or not set(out) <= set(sizes):
            raise ModelError(f"Einsum {node.name!r}: output {rhs!r} repeats a label or names an unknown one")
    else:  # implicit: the ellipsis dims, then the labels that appear once, in alphabetical order
        counts = {}
        for labels in operands:
            for label in labels:
                counts[label] = counts.get(label, 0) + 1
        out = list(ell) + sorted(lb for lb, c in counts.items() if c == 1 and lb not in ell)
    return operands, out, sizes


@register("Einsum", since=[12])
class Einsum(OpDef):
    def infer(self, node):
        if not node.inputs or any(v is None for v in node.inputs):
            raise ModelError(f"Einsum {node.name!r}: needs at least one input")
        dtypes = {v.dtype for v in node.inputs}
        if len(dtypes) != 1 or next(iter(dtypes)).kind == "bool":
            raise UnsupportedError(f"Einsum {node.name!r}: element types {sorted(map(str, dtypes))} not supported")
        _, out, sizes = _parse(node, [v.shape for v in node.inputs])
        return [(node.inputs[0].dtype, tuple(sizes[lb] for lb in out))]

    def reference(self, node, inputs):
        eq = node.attr("equation", "")
        eq = (eq.decode() if isinstance(eq, bytes) else eq).replace(" ", "")
        wide = np.float64 if inputs[0].dtype.kind == "f" else np.int64
        return [np.einsum(eq, *[a.astype(wide) for a in inputs]).astype(inputs[0].dtype)]

    def lower(self, node):
        y = node.outputs[0]
        operands, out, sizes = _parse(node, [v.shape for v in node.inputs])
        var = {label: f"o{k}" for k, label in enumerate(out)}
        summed = [lb for lb in dict.fromkeys(lb for labels in operands for lb in labels) if lb not in var]
        var.update({label: f"c{k}" for k, label in enumerate(summed)})
        acc = "double" if y.dtype.is_float else ("uint64_t" if y.dtype.kind == "uint" else "int64_t")
        reads = []
        for k, (v, labels) in enumerate(zip(node.inputs, operands)):
            terms = [
                f"{var[lb]} * {s}" if s != 1 else var[lb]
                for lb, d, s in zip(labels, v.shape, contiguous_strides(v.shape))
                if d != 1  # a size-1 (broadcast) dim always reads index 0
            ]
            reads.append(f"({acc})in{k}[{' + '.join(terms) or '0'}]")
        loops = "".join(f"for (int64_t {var[lb]} = 0; {var[lb]} < {sizes[lb]}; ++{var[lb]}) " for lb in summed)
        lets = [f"{acc} acc = 0;", f"{loops}acc += {' * '.join(reads)};"]
        return [indexed_kernel(node, list(node.inputs), y, "acc", lets)]
