"""Element types: the ONNX code, the numpy dtype and the C type of each."""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes  # numpy's bfloat16 (a dependency of onnx itself)
import numpy as np


@dataclass(frozen=True)
class DType:
    name: str
    onnx: int  # TensorProto.DataType code
    np: np.dtype
    c: str | None  # C storage type; None where the C target has none yet
    kind: str  # "float", "int", "uint", "bool" or "string"
    storage_only: bool = False  # stored as bits in `c`; computed in float32 (passes/legalize_types.py)

    @property
    def itemsize(self) -> int:
        return self.np.itemsize

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def is_int(self) -> bool:
        return self.kind in ("int", "uint")

    def __repr__(self) -> str:
        return self.name


FLOAT32 = DType("float32", 1, np.dtype(np.float32), "float", "float")
UINT8 = DType("uint8", 2, np.dtype(np.uint8), "uint8_t", "uint")
INT8 = DType("int8", 3, np.dtype(np.int8), "int8_t", "int")
UINT16 = DType("uint16", 4, np.dtype(np.uint16), "uint16_t", "uint")
INT16 = DType("int16", 5, np.dtype(np.int16), "int16_t", "int")
INT32 = DType("int32", 6, np.dtype(np.int32), "int32_t", "int")
INT64 = DType("int64", 7, np.dtype(np.int64), "int64_t", "int")
BOOL = DType("bool", 9, np.dtype(np.bool_), "bool", "bool")
FLOAT16 = DType("float16", 10, np.dtype(np.float16), "uint16_t", "float", storage_only=True)
FLOAT64 = DType("float64", 11, np.dtype(np.float64), "double", "float")
UINT32 = DType("uint32", 12, np.dtype(np.uint32), "uint32_t", "uint")
UINT64 = DType("uint64", 13, np.dtype(np.uint64), "uint64_t", "uint")
BFLOAT16 = DType("bfloat16", 16, np.dtype(ml_dtypes.bfloat16), "uint16_t", "float", storage_only=True)
# The float8 family (ONNX's Cast and Q/DQ types): one byte of bits each, runtime_c/mlcc_convert.h.
F8E4M3FN = DType("float8e4m3fn", 17, np.dtype(ml_dtypes.float8_e4m3fn), "uint8_t", "float", storage_only=True)
F8E4M3FNUZ = DType("float8e4m3fnuz", 18, np.dtype(ml_dtypes.float8_e4m3fnuz), "uint8_t", "float", storage_only=True)
F8E5M2 = DType("float8e5m2", 19, np.dtype(ml_dtypes.float8_e5m2), "uint8_t", "float", storage_only=True)
F8E5M2FNUZ = DType("float8e5m2fnuz", 20, np.dtype(ml_dtypes.float8_e5m2fnuz), "uint8_t", "float", storage_only=True)
FLOAT8 = (F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ)
F8E8M0 = DType("float8e8m0", 24, np.dtype(ml_dtypes.float8_e8m0fnu), "uint8_t", "float", storage_only=True)
F4E2M1 = DType("float4e2m1", 23, np.dtype(ml_dtypes.float4_e2m1fn), "uint8_t", "float", storage_only=True)
# Sub-byte integers: one element per byte (as numpy/ml_dtypes hold them, and so at mlcc's C API), the value
# in the low bits; ONNX packs them only in its files, and the importer unpacks them.
UINT4 = DType("uint4", 21, np.dtype(ml_dtypes.uint4), "uint8_t", "uint", storage_only=True)
INT4 = DType("int4", 22, np.dtype(ml_dtypes.int4), "uint8_t", "int", storage_only=True)
UINT2 = DType("uint2", 25, np.dtype(ml_dtypes.uint2), "uint8_t", "uint", storage_only=True)
INT2 = DType("int2", 26, np.dtype(ml_dtypes.int2), "uint8_t", "int", storage_only=True)
SUB_BYTE_INTS = (INT4, UINT4, INT2, UINT2)
# Strings: numpy object arrays of str; in C a NUL-terminated UTF-8 `const char *` per element (mlcc_str,
# runtime_c/mlcc_runtime.h; 8 bytes: string tensors need a 64-bit target). Only ops that set
# OpDef.strings take them (the importer checks); runtime_c/mlcc_strings.h holds the run-time helpers.
STRING = DType("string", 8, np.dtype(object), "mlcc_str", "string")

ALL = (FLOAT32, UINT8, INT8, UINT16, INT16, INT32, INT64, BOOL, FLOAT16, FLOAT64, UINT32, UINT64, BFLOAT16, *FLOAT8)
ALL += (F8E8M0, F4E2M1, *SUB_BYTE_INTS, STRING)
BY_ONNX = {d.onnx: d for d in ALL}
BY_NAME = {d.name: d for d in ALL}
_BY_NP = {d.np: d for d in ALL}

FLOATS = (FLOAT32, FLOAT64, FLOAT16, BFLOAT16)
INTS = (INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64)
NUMERIC = FLOATS + INTS


def from_numpy(dt: np.dtype) -> DType:
    """The DType of a numpy dtype; KeyError where mlcc has none."""
    return _BY_NP[np.dtype(dt)]
