"""LabelEncoder (ai.onnx.ml, opsets 1, 2 and 4): maps each element through a key -> value table given as
attributes (keys_strings/int64s/floats or keys_tensor, the same for values, and a default).

The table is sorted at compile time (a repeated key: the last one wins, as the spec says) and each element
is looked up by binary search: bytewise order for strings (strcmp's), numeric order otherwise, with a NaN
key matching every NaN input. Keys and input share one type, values and output another: string, int16,
int32, int64, float or double.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..ir.dtypes import FLOAT32, FLOAT64, INT16, INT32, INT64, STRING, DType, from_numpy
from .common import c_literal, need_input
from .ml_basic import ML_DOMAIN
from .registry import Kernel, OpDef, register
from .strings import string_array

TYPES = (STRING, INT64, FLOAT32, INT32, INT16, FLOAT64)
DEFAULTS = {"string": "_Unused", "int": -1, "float": -0.0}
_LISTS = (("strings", STRING), ("int64s", INT64), ("floats", FLOAT32))


def _side(node, side: str) -> tuple[DType, np.ndarray]:
    """The keys or values: their type and a 1-D array."""
    found = [(d, np.array(node.attr(f"{side}_{s}"), dtype=d.np)) for s, d in _LISTS if node.attr(f"{side}_{s}")]
    tensor = node.attr(f"{side}_tensor")
    if tensor is not None:
        found.append((from_numpy(tensor.dtype), tensor.reshape(-1)))
    if len(found) != 1:
        raise ModelError(f"LabelEncoder {node.name!r}: exactly one of the {side}_* attributes must be set")
    dtype, data = found[0]
    if dtype not in TYPES:
        raise UnsupportedError(f"LabelEncoder {node.name!r}: {side} of element type {dtype} are not supported")
    return dtype, data


def _default(node, vtype: DType):
    tensor = node.attr("default_tensor")
    if tensor is not None:
        if tensor.size != 1 or from_numpy(tensor.dtype) != vtype:
            raise ModelError(f"LabelEncoder {node.name!r}: default_tensor must be one {vtype} element")
        return tensor.reshape(-1)[0]
    attr = {"string": "default_string", "int": "default_int64", "float": "default_float"}[vtype.kind]
    return node.attr(attr, DEFAULTS[vtype.kind])


def _is_nan(k) -> bool:
    return isinstance(k, float) and math.isnan(k)


def _table(node):
    """(key type, value type, sorted keys, their values, the value of a NaN key or None, the default)."""
    (ktype, keys), (vtype, values) = _side(node, "keys"), _side(node, "values")
    if len(keys) != len(values):
        raise ModelError(f"LabelEncoder {node.name!r}: {len(keys)} keys but {len(values)} values")
    mapping, nan_value = {}, None
    for k, v in zip(keys.tolist(), values.tolist()):
        if _is_nan(k):
            nan_value = v
        else:
            mapping[k] = v  # the last of a repeated key wins
    order = sorted(mapping, key=lambda k: k.encode("utf-8", "surrogateescape") if ktype == STRING else k)
    return ktype, vtype, order, [mapping[k] for k in order], nan_value, _default(node, vtype)


@register("LabelEncoder", since=[1, 2, 4], domain=ML_DOMAIN)
class LabelEncoder(OpDef):
    strings = True

    def infer(self, node):
        x = need_input(node, 0)
        ktype, vtype = _side(node, "keys")[0], _side(node, "values")[0]
        if x.dtype != ktype:
            raise ModelError(f"LabelEncoder {node.name!r}: X is {x.dtype} but the keys are {ktype}")
        return [(vtype, x.shape)]

    def reference(self, node, inputs):
        x = inputs[0]
        _, vtype, keys, values, nan_value, default = _table(node)
        mapping = dict(zip(keys, values))
        out = []
        for e in x.reshape(-1).tolist():
            out.append(nan_value if _is_nan(e) and nan_value is not None else mapping.get(e, default))
        if vtype == STRING:
            return [string_array(out, x.shape)]
        return [np.array(out, dtype=vtype.np).reshape(x.shape)]

    def lower(self, node):
        x, y = node.inputs[0], node.outputs[0]
        ktype, vtype, keys, values, nan_value, default = _table(node)

        def literal(v, dtype: DType) -> str:  # strings go raw: the template escapes them (c_string)
            return v if dtype == STRING else c_literal(v, dtype)

        params = {
            "n": x.size,
            "ktype": ktype.c,
            "vtype": vtype.c,
            "string_keys": ktype == STRING,
            "string_values": vtype == STRING,
            "float_keys": ktype.is_float,
            "keys": [literal(k, ktype) for k in keys],
            "values": [literal(v, vtype) for v in values],
            "nan_value": None if nan_value is None else literal(nan_value, vtype),
            "default": literal(default, vtype),
        }
        return [Kernel("label_encoder", "label_encoder", [x], [y], params)]
