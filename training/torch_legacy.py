"""Read the tensors of a PyTorch legacy-format (pre-1.6) `.pth` file into numpy, without PyTorch.

The file is untrusted input: pickle runs whatever code its opcodes name. This reader lets them name only
what a state dict of plain tensors needs (an OrderedDict, torch's `_rebuild_tensor_v2` and the storage
classes, all mapped to our own functions) and refuses anything else with `UnsafeWeights`.

The format (torch/serialization.py's `_legacy_save`): five pickles, then the raw storages:
  magic number, protocol version, system info, the object (tensors refer to storages by a persistent id
  `("storage", StorageClass, key, location, size, view)`), the sorted list of storage keys; then, for each
  key in that order, the element count as a little-endian int64 and the elements.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
# More tensors or elements than any backbone has: a file claiming more is refused before memory is spent.
MAX_ELEMENTS = 2**31


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


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *rest):
    if not isinstance(storage, _StorageRef):
        raise UnsafeWeights("a tensor's storage is not a storage reference")
    return _TensorRef(storage, int(storage_offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *rest):
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
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsafeWeights(f"unexpected persistent id {pid!r:.80}")
        _, storage_type, key, _location, size, view = pid
        if view is not None:
            raise UnsafeWeights("storage views are not supported")
        if not isinstance(size, int) or not 0 <= size <= MAX_ELEMENTS:
            raise UnsafeWeights(f"storage {key!r} claims {size!r} elements")
        return _StorageRef(str(key), STORAGE_DTYPES[storage_type.name], size)


def _load(stream: IO[bytes]) -> Any:
    return _Unpickler(stream).load()


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """name -> array, in the file's order. Raises UnsafeWeights for anything but a legacy state dict of tensors."""
    with open(path, "rb") as stream:
        return _read(stream)


def _read(stream: IO[bytes]) -> dict[str, np.ndarray]:
    try:
        if _load(stream) != MAGIC_NUMBER:
            raise UnsafeWeights("not a PyTorch legacy-format file (magic number)")
        if _load(stream) != PROTOCOL_VERSION:
            raise UnsafeWeights("unknown PyTorch legacy protocol version")
        info = _load(stream)
        if not isinstance(info, dict) or not info.get("little_endian", False):
            raise UnsafeWeights("only little-endian files are read")
        state = _load(stream)
        keys = _load(stream)
    except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise UnsafeWeights(f"not a PyTorch legacy-format file: {exc}") from None
    if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
        raise UnsafeWeights("the file holds something other than a dict of tensors")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise UnsafeWeights("the storage key list is not a list of strings")
    wanted = {t.storage.key: t.storage for t in state.values()}
    storages: dict[str, np.ndarray] = {}
    for key in keys:
        (count,) = struct.unpack("<q", _exactly(stream, 8))
        ref = wanted.get(key)
        if ref is None or count != ref.size:
            raise UnsafeWeights(f"storage {key!r}: {count} elements where the tensors say {ref.size if ref else 'none'}")
        itemsize = np.dtype(ref.dtype).itemsize
        storages[key] = np.frombuffer(_exactly(stream, count * itemsize), dtype=np.dtype(ref.dtype).newbyteorder("<"))
    missing = set(wanted) - set(storages)
    if missing:
        raise UnsafeWeights(f"{len(missing)} storages are missing from the file")
    return {str(name): _tensor(ref, storages[ref.storage.key]) for name, ref in state.items()}


def _exactly(stream: IO[bytes], count: int) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise UnsafeWeights("the file ends before its storages do")
    return data


def _tensor(ref: _TensorRef, storage: np.ndarray) -> np.ndarray:
    """The tensor's elements as a new C-ordered array, after checking its view stays inside its storage."""
    if any(s < 0 for s in ref.shape) or any(s < 0 for s in ref.stride) or ref.offset < 0:
        raise UnsafeWeights("negative shape, stride or offset")
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride) if n > 0)
    if int(np.prod(ref.shape)) and last >= storage.size:
        raise UnsafeWeights("a tensor reaches past its storage")
    itemsize = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[ref.offset:], shape=ref.shape,
                                           strides=tuple(s * itemsize for s in ref.stride), writeable=False)
    return np.array(view, dtype=storage.dtype.newbyteorder("="), copy=True)


def read_bytes(data: bytes) -> dict[str, np.ndarray]:
    """`read_state_dict` of a file's bytes (tests build hostile files in memory)."""
    return _read(io.BytesIO(data))
