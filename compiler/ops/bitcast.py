"""BitCast (opset 26): the bits of each element reinterpreted as another type of the same width.

Most pairs copy the bytes unchanged on the "bitcast" kernel family (memcpy in C, word copies in CUDA). A C
`bool` may only hold 0 or 1, so a cast to bool stores `byte != 0`: any nonzero byte reads as true, as numpy's
view of it does.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..ir.dtypes import BOOL, BY_ONNX, DType
from ..ir.graph import Node
from .common import loop_kernel, need_input, require_c
from .registry import Kernel, OpDef, register

WORDS = {1: "uint8_t", 2: "uint16_t", 4: "uint32_t", 8: "uint64_t"}  # the unsigned word of each element width


@register("BitCast", since=[26])
class BitCast(OpDef):
    def _to(self, node: Node) -> DType:
        code = node.attr("to")
        if code is None:
            raise ModelError(f"BitCast {node.name!r}: attribute 'to' is required")
        if code == 8:  # TensorProto.STRING
            raise ModelError(f"BitCast {node.name!r}: strings have no fixed bit width; BitCast to string is invalid")
        to = BY_ONNX.get(code)
        if to is None:
            raise UnsupportedError(f"BitCast {node.name!r}: target element type code {code} is not supported")
        return to

    def infer(self, node):
        x, to = need_input(node, 0), self._to(node)
        if x.dtype.itemsize != to.itemsize:
            raise ModelError(
                f"BitCast {node.name!r}: {x.dtype} ({8 * x.dtype.itemsize} bits) and {to} ({8 * to.itemsize} bits) "
                "differ in width; BitCast needs types of the same bit width"
            )
        return [(to, x.shape)]

    def reference(self, node, inputs):
        to = self._to(node)
        x = np.ascontiguousarray(inputs[0])
        if to == BOOL:
            return [x.view(np.uint8) != 0]
        return [x.view(to.np)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        require_c(node, x, y)
        if y.size == 0:
            return []
        if y.dtype == BOOL:
            return [loop_kernel("bitcast", [x], y, "v0 != 0", [x.size], [[1]])]
        params = {"nbytes": x.nbytes, "word": WORDS[x.dtype.itemsize], "work_items": x.size}
        return [Kernel("bitcast", "bitcast", [x], [y], params, ["X", "Y"])]
