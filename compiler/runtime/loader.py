"""ctypes loader for a library mlcc built: metadata, checks, and run() with numpy in and out."""

from __future__ import annotations

import ctypes
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codegen.backends.c import ABI_VERSION
from ..errors import MlccError
from ..ir.dtypes import BY_ONNX


class _TensorInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("dtype", ctypes.c_int32),
        ("rank", ctypes.c_int32),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("nbytes", ctypes.c_int64),
        ("dynamic_axis", ctypes.c_int32),
    ]


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]  # along dynamic_axis: the upper bound
    dynamic_axis: int | None = None  # the axis whose extent each run reports (NonZero, Unique, ...)


class CompiledModel:
    """An instance of a compiled model. `run({name: array}) -> {name: array}`."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        manifest_path = self.out_dir / "model.json"
        if not manifest_path.is_file():
            raise MlccError(f"{str(self.out_dir)!r} holds no model.json: not an mlcc output directory")
        manifest = json.loads(manifest_path.read_text())
        self.target = manifest.get("target")
        if self.target not in ("c", "cuda"):
            raise MlccError(f"{str(self.out_dir)!r} was built for target {self.target!r}, which this loader cannot run")
        lib_path = self.out_dir / manifest["library"]
        if not lib_path.is_file():
            raise MlccError(
                f"{str(lib_path)!r} not found: build it with `make -C {self.out_dir}` or compile without --no-build"
            )
        self._lib = lib = ctypes.CDLL(str(lib_path.resolve()))
        p = self._prefix = manifest["prefix"]
        self._fn("abi_version", ctypes.c_int, [])
        self._fn("model_hash", ctypes.c_char_p, [])
        if self._call("abi_version") != ABI_VERSION or manifest.get("abi_version") != ABI_VERSION:
            raise MlccError(
                f"{str(lib_path)!r} has C API version {self._call('abi_version')}; this mlcc expects {ABI_VERSION}: recompile the model"
            )
        if self._call("model_hash").decode() != manifest["model_hash"]:
            raise MlccError(
                f"{str(lib_path)!r} does not match {str(manifest_path)!r} (model hash differs): recompile the model"
            )
        handle = ctypes.c_void_p
        self._fn("create", ctypes.c_int, [ctypes.POINTER(handle)])
        self._fn("create_from_file", ctypes.c_int, [ctypes.POINTER(handle), ctypes.c_char_p])
        self._fn("run", ctypes.c_int, [handle, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p)])
        self._fn("destroy", None, [handle])
        self._fn("status_message", ctypes.c_char_p, [ctypes.c_int])
        self._fn("output_shape", ctypes.c_int, [handle, ctypes.c_int, ctypes.POINTER(ctypes.c_int64)])
        self._fn("output_data", ctypes.POINTER(ctypes.c_char_p), [handle, ctypes.c_int])
        if self.target == "cuda":
            self._fn(
                "run_async",
                ctypes.c_int,
                [handle, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p],
            )
            self._fn("uses_cuda_graph", ctypes.c_int, [handle])
        for kind in ("input", "output"):
            self._fn(f"num_{kind}s", ctypes.c_int, [])
            self._fn(f"{kind}_info", ctypes.POINTER(_TensorInfo), [ctypes.c_int])
        self.inputs = self._infos("input")
        self.outputs = self._infos("output")
        plain = {kind: [{"name": t.name, "form": "tensor", "items": [t.name]} for t in getattr(self, kind)]
                 for kind in ("inputs", "outputs")}  # fmt: skip
        self.signature = manifest.get("signature") or plain
        self._handle = handle()
        if manifest["weights"] == "external":
            status = self._call(
                "create_from_file", ctypes.byref(self._handle), str(self.out_dir / "weights.bin").encode()
            )
        else:
            status = self._call("create", ctypes.byref(self._handle))
        self._check(status, "create")
        del lib, p

    def _fn(self, name: str, restype, argtypes) -> None:
        f = getattr(self._lib, f"{self._prefix}_{name}")
        f.restype, f.argtypes = restype, argtypes

    def _call(self, name: str, *args):
        return getattr(self._lib, f"{self._prefix}_{name}")(*args)

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            raise MlccError(f"{what} failed: {self._call('status_message', status).decode()} (status {status})")

    def _infos(self, kind: str) -> list[TensorInfo]:
        infos = []
        for i in range(self._call(f"num_{kind}s")):
            info = self._call(f"{kind}_info", i).contents
            shape = tuple(info.shape[d] for d in range(info.rank))
            axis = None if info.dynamic_axis < 0 else int(info.dynamic_axis)
            infos.append(TensorInfo(info.name.decode("utf-8", "surrogateescape"), BY_ONNX[info.dtype].np, shape, axis))
        return infos

    @property
    def graph_inputs(self) -> list[str]:
        """The model's own inputs, as run() takes them (a sequence is one input, its tensors are several)."""
        return [e["name"] for e in self.signature["inputs"]]

    @property
    def graph_outputs(self) -> list[str]:
        return [e["name"] for e in self.signature["outputs"]]

    def run(self, feeds: dict) -> dict:
        """Run once with the model's own inputs by name: an array per tensor, a list of arrays per sequence,
        None for an absent optional. Returns the outputs the same way (new arrays).

        Tensor-only models take and give what run_tensors() does."""
        unknown = sorted(set(feeds) - set(self.graph_inputs))
        missing = [n for n in self.graph_inputs if n not in feeds]
        if unknown or missing:
            raise ValueError(f"inputs do not match: missing {missing}, unknown {unknown}; expected {self.graph_inputs}")
        flat = {}
        for e in self.signature["inputs"]:
            value, items = feeds[e["name"]], e["items"]
            if e["form"] in ("sequence", "optional sequence"):
                if value is None or isinstance(value, np.ndarray) or len(value) != len(items):
                    got = "None" if value is None else f"{len(value)} arrays"
                    raise ValueError(
                        f"input {e['name']!r}: a sequence of {len(items)} tensors was compiled, {got} given"
                    )
                flat.update(zip(items, value))
            elif e["form"] == "empty optional":
                if value is not None:
                    raise ValueError(f"input {e['name']!r}: compiled as an absent optional, give None")
            elif value is None:
                raise ValueError(f"input {e['name']!r}: None given for a tensor")
            else:
                flat[items[0]] = value
        results = self.run_tensors(flat)
        grouped = {}
        for e in self.signature["outputs"]:
            parts = [results[n] for n in e["items"]]
            if e["form"] in ("sequence", "optional sequence"):
                grouped[e["name"]] = parts
            else:
                grouped[e["name"]] = parts[0] if parts else None
        return grouped

    def run_tensors(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; every tensor of the C API by name (a sequence's elements are NAME[0], NAME[1], ...),
        with its exact shape and dtype. Returns new output arrays, by C API name."""
        if self._handle is None:
            raise ValueError("this model instance has been closed")
        names = [t.name for t in self.inputs]
        unknown = sorted(set(feeds) - set(names))
        missing = [n for n in names if n not in feeds]
        if unknown or missing:
            raise ValueError(f"inputs do not match: missing {missing}, unknown {unknown}; expected {names}")
        buffers = []
        for t in self.inputs:
            a = np.asarray(feeds[t.name])
            if t.dtype == object and a.dtype.kind in "OUS":
                buffers.append(_string_buffer(t.name, a))
                a = np.empty(a.shape, dtype=object)  # for the shape check
            elif a.dtype != t.dtype:
                raise ValueError(f"input {t.name!r}: dtype {a.dtype}, expected {t.dtype}")
            else:
                buffers.append(np.ascontiguousarray(a))
            if a.shape != t.shape:
                raise ValueError(f"input {t.name!r}: shape {list(a.shape)}, expected {list(t.shape)}")
        results = [None if t.dtype == object else np.empty(t.shape, dtype=t.dtype) for t in self.outputs]
        in_ptrs = (ctypes.c_void_p * max(len(buffers), 1))(*[_address(b) for b in buffers])
        out_ptrs = (ctypes.c_void_p * max(len(results), 1))(*[_address(r) for r in results])
        self._check(self._call("run", self._handle, in_ptrs, out_ptrs), "run")
        return {t.name: self._produced(j, t, r) for j, (t, r) in enumerate(zip(self.outputs, results))}

    def _produced(self, index: int, t: TensorInfo, buffer: np.ndarray | None) -> np.ndarray:
        """Output `index` as the run wrote it: the buffer itself, or for a data-dependent shape its leading part;
        string outputs from the instance (output_data)."""
        shape = t.shape
        if t.dynamic_axis is not None:
            dims = (ctypes.c_int64 * max(len(t.shape), 1))()
            self._check(self._call("output_shape", self._handle, index, dims), "output_shape")
            shape = tuple(int(dims[d]) for d in range(len(t.shape)))
            unbounded = t.dtype == object and t.shape[t.dynamic_axis] == 0
            if any(
                d < 0 or (d > b and not (unbounded and a == t.dynamic_axis))
                for a, (d, b) in enumerate(zip(shape, t.shape))
            ):
                raise MlccError(
                    f"output {t.name!r}: the run reported shape {list(shape)} beyond its bound {list(t.shape)}"
                )
        count = int(np.prod(shape, dtype=np.int64))
        if buffer is None:  # strings: the instance's
            data = self._call("output_data", self._handle, index)
            if not data:
                raise MlccError(f"output {t.name!r}: the run left no string data")
            items = [data[i].decode("utf-8", "surrogateescape") for i in range(count)]
            return np.array(items, dtype=object).reshape(shape)
        if t.dynamic_axis is None:
            return buffer
        return buffer.reshape(-1)[:count].reshape(shape).copy()

    def run_device(self, inputs: dict, outputs: dict | None = None, stream: int = 0) -> dict:
        """CUDA builds: run on device arrays (anything with __cuda_array_interface__: CuPy, PyTorch, pycuda)
        without host copies. Outputs are allocated with CuPy where not given. Queued on `stream` (a
        cudaStream_t as int; 0 is the legacy default stream); synchronize before reading the outputs."""
        if self.target != "cuda":
            raise ValueError("run_device needs a model compiled with --target cuda")
        if outputs is None:
            try:
                import cupy
            except ImportError:
                raise ValueError("pass `outputs` (device arrays), or install CuPy to have them allocated") from None
            outputs = {t.name: cupy.empty(t.shape, dtype=t.dtype) for t in self.outputs}
        in_ptrs = [_device_pointer(inputs, t, "input") for t in self.inputs]
        out_ptrs = [_device_pointer(outputs, t, "output") for t in self.outputs]
        ins = (ctypes.c_void_p * max(len(in_ptrs), 1))(*in_ptrs)
        outs = (ctypes.c_void_p * max(len(out_ptrs), 1))(*out_ptrs)
        self._check(self._call("run_async", self._handle, ins, outs, ctypes.c_void_p(stream)), "run_async")
        return outputs

    @property
    def uses_cuda_graph(self) -> bool:
        return self.target == "cuda" and bool(self._call("uses_cuda_graph", self._handle))

    def close(self) -> None:
        if getattr(self, "_handle", None):
            self._call("destroy", self._handle)
        self._handle = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: ctypes may be gone
            pass

    def __enter__(self) -> CompiledModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _string_buffer(name: str, a: np.ndarray) -> ctypes.Array:
    """A string tensor as the C API takes it: a contiguous array of NUL-terminated UTF-8 pointers (the
    ctypes array keeps the bytes alive)."""
    items = []
    for x in a.reshape(-1):
        b = x.encode("utf-8", "surrogateescape") if isinstance(x, str) else x
        if not isinstance(b, bytes):
            raise ValueError(f"input {name!r}: a string tensor holds {type(x).__name__}, not str")
        if b"\0" in b:
            raise ValueError(f"input {name!r}: a string holds a NUL byte, which mlcc's C strings end at")
        items.append(b)
    return (ctypes.c_char_p * max(len(items), 1))(*items)


def _address(buffer) -> int | None:
    if buffer is None:
        return None
    if isinstance(buffer, np.ndarray):
        return buffer.ctypes.data
    return ctypes.addressof(buffer)


def _device_pointer(arrays: dict, t: TensorInfo, kind: str) -> int:
    """The device pointer of arrays[t.name], after checking dtype, shape and contiguity."""
    if t.name not in arrays:
        raise ValueError(f"{kind} {t.name!r} is missing")
    iface = getattr(arrays[t.name], "__cuda_array_interface__", None)
    if iface is None:
        raise ValueError(f"{kind} {t.name!r} is not a device array (no __cuda_array_interface__)")
    if np.dtype(iface["typestr"]) != t.dtype or tuple(iface["shape"]) != t.shape:
        raise ValueError(
            f"{kind} {t.name!r}: {iface['typestr']}{list(iface['shape'])}, expected {t.dtype}{list(t.shape)}"
        )
    strides = iface.get("strides")
    if strides is not None and tuple(strides) != tuple(np.empty(t.shape, t.dtype).strides):
        raise ValueError(f"{kind} {t.name!r} must be contiguous")
    return int(iface["data"][0])
