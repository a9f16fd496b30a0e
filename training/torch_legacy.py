"""Read the tensors of a PyTorch legacy-format (pre-1.6) `.pth` file into numpy, without PyTorch.

The file is untrusted input: pickle runs whatever code its opcodes name. This reader lets them name only
what a state dict of plain tensors needs (an OrderedDict, torch's `_rebuild_tensor_v2` and the storage
classes, all mapped to our own functions) and refuses anything else with `UnsafeWeights`.

Junk is refused too, never half-read and never a crash: every pickle is first walked opcode by opcode
(`pickletools`, which reads nothing it is not given) and may use only protocol 0-2 opcodes, the ones
`_legacy_save` writes; the C unpickler then runs over bytes already in memory, so no length a file claims (of
a string, a storage, a tensor) is allocated before it is checked against what the file holds.

The format (torch/serialization.py's `_legacy_save`): five pickles, then the raw storages:
  magic number, protocol version, system info, the object (tensors refer to storages by a persistent id
  `("storage", StorageClass, key, location, size, view)`), the sorted list of storage keys; then, for each
  key in that order, the element count as a little-endian int64 and the elements.
"""
from __future__ import annotations

import collections
import io
import math
import pickle
import pickletools
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
# More elements than any backbone's tensor has: a size, stride or offset claiming more is refused.
MAX_ELEMENTS = 2**31
PICKLE_PROTOCOL = 2  # what _legacy_save writes: opcodes of later protocols (BINBYTES8, FRAME, ...) are refused
# What the C unpickler and our stand-ins raise for malformed opcodes or arguments (a truncated pickle, a bad
# memo index, invalid UTF-8, an int too large, a claimed length it cannot allocate, lists nested too deep).
_JUNK = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
         OverflowError, MemoryError, RecursionError)


class UnsafeWeights(ValueError):
    """The file is not a plain legacy state dict of tensors: it names other code, or its parts disagree."""


@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: Any
    size: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _count(value: Any, what: str) -> int:
    """An int in [0, MAX_ELEMENTS] (no bool, float or string: int() would make one of those fit)."""
    if type(value) is not int or not 0 <= value <= MAX_ELEMENTS:
        raise UnsafeWeights(f"a tensor's {what} is not a count in [0, {MAX_ELEMENTS}]")
    return value


def _counts(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)):
        raise UnsafeWeights(f"a tensor's {what} is not a tuple")
    return tuple(_count(v, what) for v in values)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, *rest: Any) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise UnsafeWeights("a tensor's storage is not a storage reference")
    shape, strides = _counts(size, "size"), _counts(stride, "stride")
    if len(shape) != len(strides):
        raise UnsafeWeights("a tensor's size and stride differ in length")
    return _TensorRef(storage, _count(storage_offset, "offset"), shape, strides)


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    return data


class _Unpickler(pickle.Unpickler):
    """Resolves only the names a state dict of tensors uses, each to our own stand-in."""

    ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeWeights(f"the weights file names {module}.{name}, which a state dict of tensors never does")

    def persistent_load(self, pid: Any) -> _StorageRef:
        # never repr(pid): it is the file's object, as large or as deeply nested as the file makes it
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], _StorageType)
                and isinstance(pid[2], str)):
            raise UnsafeWeights(f"unexpected persistent id (a {type(pid).__name__}), not a storage")
        _, storage_type, key, _location, size, view = pid
        if view is not None:
            raise UnsafeWeights("storage views are not supported")
        if type(size) is not int or not 0 <= size <= MAX_ELEMENTS:
            raise UnsafeWeights(f"storage {key[:40]!r} claims a size that is not in [0, {MAX_ELEMENTS}]")
        return _StorageRef(key, STORAGE_DTYPES[storage_type.name], size)


class _Input:
    """The file's bytes and a read position."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.position = 0

    def pickle(self) -> Any:
        """The next pickle's object: its opcodes checked first, then unpickled from memory."""
        stream = io.BytesIO(self.data[self.position:])
        for opcode, _arg, _at in pickletools.genops(stream):  # stops after STOP; raises on junk or a short pickle
            if opcode.proto > PICKLE_PROTOCOL:
                raise UnsafeWeights(f"pickle opcode {opcode.name} (protocol {opcode.proto}), which the format never uses")
        end = self.position + stream.tell()
        obj = _Unpickler(io.BytesIO(self.data[self.position:end])).load()
        self.position = end
        return obj

    def take(self, count: int) -> memoryview:
        if not 0 <= count <= len(self.data) - self.position:
            raise UnsafeWeights("the file ends before its storages do")
        self.position += count
        return self.data[self.position - count:self.position]


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """name -> array, in the file's order. Raises UnsafeWeights for anything but a legacy state dict of tensors."""
    return read_bytes(Path(path).read_bytes())  # 20-25 MB for the backbones: read whole, then checked


def read_bytes(data: bytes) -> dict[str, np.ndarray]:
    """`read_state_dict` of a file's bytes (tests build hostile files in memory)."""
    stream = _Input(data)
    try:
        if stream.pickle() != MAGIC_NUMBER:
            raise UnsafeWeights("not a PyTorch legacy-format file (magic number)")
        if stream.pickle() != PROTOCOL_VERSION:
            raise UnsafeWeights("unknown PyTorch legacy protocol version")
        info = stream.pickle()
        if not isinstance(info, dict) or not info.get("little_endian", False):
            raise UnsafeWeights("only little-endian files are read")
        state = stream.pickle()
        keys = stream.pickle()
    except UnsafeWeights:
        raise
    except _JUNK as exc:
        raise UnsafeWeights(f"not a PyTorch legacy-format file: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, _TensorRef) for k, v in state.items()):
        raise UnsafeWeights("the file holds something other than a dict of tensors")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise UnsafeWeights("the storage key list is not a list of strings")
    wanted: dict[str, _StorageRef] = {}
    for tensor in state.values():
        if wanted.setdefault(tensor.storage.key, tensor.storage) != tensor.storage:
            raise UnsafeWeights(f"storage {tensor.storage.key[:40]!r}: its tensors disagree on its type or size")
    storages: dict[str, np.ndarray] = {}
    for key in keys:
        (count,) = struct.unpack("<q", stream.take(8))
        ref = wanted.get(key)
        if ref is None or count != ref.size or key in storages:
            raise UnsafeWeights(f"storage {key[:40]!r}: {count} elements where the tensors say {ref.size if ref else 'none'}")
        dtype = np.dtype(ref.dtype).newbyteorder("<")
        storages[key] = np.frombuffer(stream.take(count * dtype.itemsize), dtype=dtype)
    missing = set(wanted) - set(storages)
    if missing:
        raise UnsafeWeights(f"{len(missing)} storages are missing from the file")
    return {name: _tensor(ref, storages[ref.storage.key]) for name, ref in state.items()}


def _tensor(ref: _TensorRef, storage: np.ndarray) -> np.ndarray:
    """The tensor's elements as a new C-ordered array, after checking its view stays inside its storage.

    A tensor may not have more elements than its storage: weights never repeat elements (stride 0 or
    overlapping rows), and a file claiming so would make a small storage fill all memory."""
    count = math.prod(ref.shape)
    if count > storage.size:
        raise UnsafeWeights(f"a tensor of {count} elements over a storage of {storage.size}: more elements than it holds")
    dtype = storage.dtype.newbyteorder("=")
    if count == 0:
        return np.zeros(ref.shape, dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride))
    if last >= storage.size:
        raise UnsafeWeights("a tensor reaches past its storage")
    view = np.lib.stride_tricks.as_strided(storage[ref.offset:], shape=ref.shape,
                                           strides=tuple(s * storage.itemsize for s in ref.stride), writeable=False)
    return np.array(view, dtype=dtype, order="C", copy=True)
