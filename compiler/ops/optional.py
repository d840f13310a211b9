"""OptionalHasElement and OptionalGetElement on tensors (mlcc has no optional or sequence values).

An input that is absent is an empty optional; a tensor input is a present one. So OptionalHasElement is
known at compile time from the node alone (false without an input, true with a tensor), and
OptionalGetElement of a tensor is that tensor.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..ir.dtypes import BOOL
from .common import need_input
from .elementwise import broadcast_kernel
from .registry import OpDef, register


@register("OptionalHasElement", since=[15, 18])
class OptionalHasElement(OpDef):
    shape_only = True  # whether the input is there is known at compile time, whatever its data

    def infer(self, node):
        return [(BOOL, ())]

    def reference(self, node, inputs):
        return [np.array(node.input(0) is not None)]

    def lower(self, node):  # always folded (shape_only)
        raise ModelError(f"OptionalHasElement {node.name!r} was not folded")


@register("OptionalGetElement", since=[15, 18])
class OptionalGetElement(OpDef):
    def infer(self, node):
        x = need_input(node, 0)
        return [(x.dtype, x.shape)]

    def reference(self, node, inputs):
        return [inputs[0]]

    def lower(self, node):
        return [broadcast_kernel(node, [need_input(node, 0)], node.outputs[0], "v0")]
