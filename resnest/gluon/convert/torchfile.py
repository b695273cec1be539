"""PyTorch's checkpoint files, read and written without PyTorch.

``torch.save`` writes a zip archive (PyTorch >= 1.6): ``<archive>/data.pkl`` is a pickle of the
saved object in which every tensor is a call of ``torch._utils._rebuild_tensor_v2`` on a
storage given by a persistent id ``('storage', torch.FloatStorage, key, 'cpu', numel)``; the
storage's bytes are the entry ``<archive>/data/<key>`` (byte order in ``<archive>/byteorder``),
and ``<archive>/version`` holds the format version. Older files (the legacy format) are one
stream: three pickles (magic number, protocol version, system info), the object's pickle, a
pickle of the storage keys, then each storage as an int64 element count and its bytes.

Reading never runs code from the file: the unpickler knows the few names a weights file uses
(tensors, storages, ``OrderedDict``); any other name becomes an inert :class:`Opaque` record.
"""
import collections
import pickle
import struct
import zipfile

import numpy as np

__all__ = ["Opaque", "is_torch_zip", "is_torch_legacy", "read_torch", "write_torch"]

# torch's storage classes and the little-endian numpy type of their elements ('bf16' is kept
# as raw 16-bit words and widened to float32 when read).
STORAGES = {"DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2",
            "BFloat16Storage": "bf16", "LongStorage": "<i8", "IntStorage": "<i4",
            "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
            "BoolStorage": "?", "UntypedStorage": "u1"}
_STORAGE_OF = {np.dtype("<f8"): "DoubleStorage", np.dtype("<f4"): "FloatStorage",
               np.dtype("<f2"): "HalfStorage", np.dtype("<i8"): "LongStorage",
               np.dtype("<i4"): "IntStorage", np.dtype("<i2"): "ShortStorage",
               np.dtype("i1"): "CharStorage", np.dtype("u1"): "ByteStorage",
               np.dtype("?"): "BoolStorage"}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_ALIGN = 64                     # torch aligns each storage entry to 64 bytes (for mmap)


class Opaque:
    """A Python object of the file that a weights file does not need (e.g. training
    arguments), kept as its name and arguments and never constructed."""

    def __init__(self, *args, **kwargs):
        self.args, self.state = args, None

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<{type(self).__qualname__}>"


def _opaque(module, name):
    return type(f"{module}.{name}", (Opaque,), {})


class _Storage:
    """A storage the pickle refers to; its ``array`` is filled once the bytes are read."""

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel, self.array = str(key), dtype, int(numel), None


class _Pending:
    """A tensor waiting for its storage: ``_rebuild_tensor_v2``'s arguments."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def build(self):
        flat = self.storage.array
        if not self.size:
            return flat[self.offset:self.offset + 1].reshape(()).copy()
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=tuple(self.size),
            strides=tuple(s * item for s in self.stride))
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, size, stride, *unused):
    return _Pending(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *unused):
    return data


class _StorageType:
    def __init__(self, name):
        self.name = name


class _Reader(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self._storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module in ("torch", "torch.storage") and name in STORAGES:
            return _StorageType(name)
        return _opaque(module, name)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        kind = pid[1].name if isinstance(pid[1], _StorageType) else None
        if kind not in STORAGES:
            raise pickle.UnpicklingError(f"unknown storage type {pid[1]!r}")
        key = str(pid[2])
        if key not in self._storages:
            self._storages[key] = _Storage(key, STORAGES[kind], pid[4])
        return self._storages[key]


def _decode(raw, dtype, numel, byteorder="little"):
    if dtype == "bf16":
        words = np.frombuffer(raw, dtype="<u2" if byteorder == "little" else ">u2", count=numel)
        return (words.astype(np.uint32) << 16).view(np.float32)
    dt = np.dtype(dtype)
    if byteorder != "little" and dt.itemsize > 1:
        dt = dt.newbyteorder(">")
    return np.frombuffer(raw, dtype=dt, count=numel).astype(dt.newbyteorder("="), copy=False)


def _finish(obj):
    """Replace every pending tensor of the loaded object by its array."""
    if isinstance(obj, _Pending):
        return obj.build()
    if isinstance(obj, dict):
        for k in obj:
            obj[k] = _finish(obj[k])
        return obj
    if isinstance(obj, list):
        return [_finish(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_finish(v) for v in obj)
    return obj


def is_torch_zip(path):
    """Whether ``path`` is a zip archive holding a ``<archive>/data.pkl``."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.count("/") == 1 and n.endswith("/data.pkl") for n in zf.namelist())


def is_torch_legacy(path):
    """Whether ``path`` starts with the legacy format's magic-number pickle."""
    with open(path, "rb") as f:
        head = f.read(2)
        if head != b"\x80\x02":
            return False
        f.seek(0)
        try:
            return pickle.Unpickler(f).load() == _LEGACY_MAGIC
        except Exception:                          # any garbage: not this format
            return False


def _read_zip(path, arrays=True):
    with zipfile.ZipFile(path) as zf:
        pkl = next(n for n in zf.namelist() if n.count("/") == 1 and n.endswith("/data.pkl"))
        root = pkl[:-len("data.pkl")]
        names = set(zf.namelist())
        order = (zf.read(root + "byteorder").decode().strip()
                 if root + "byteorder" in names else "little")
        storages = {}
        with zf.open(pkl) as f:
            obj = _Reader(f, storages).load()
        if not arrays:                             # the object's other entries only
            return obj
        for s in storages.values():
            s.array = _decode(zf.read(f"{root}data/{s.key}"), s.dtype, s.numel, order)
    return _finish(obj)


def _read_legacy(path):
    with open(path, "rb") as f:
        for _ in range(3):                         # magic number, protocol, system info
            pickle.Unpickler(f).load()
        storages = {}
        obj = _Reader(f, storages).load()
        keys = pickle.Unpickler(f).load()
        for key in keys:
            s = storages[str(key)]
            count, = struct.unpack("<q", f.read(8))
            width = 2 if s.dtype == "bf16" else np.dtype(s.dtype).itemsize
            s.array = _decode(f.read(count * width), s.dtype, count)
    return _finish(obj)


def read_torch(path, arrays=True):
    """The object ``torch.save`` wrote to ``path`` (zip or legacy format), tensors as numpy
    arrays; with ``arrays=False`` (zip format) the tensors' bytes are not read and tensors
    stay placeholders. Raises ``ValueError`` (or a pickle/zip error) when the file is not one."""
    if is_torch_zip(path):
        return _read_zip(path, arrays)
    if is_torch_legacy(path):
        return _read_legacy(path)
    raise ValueError(f"{path} is not a PyTorch file")


class _Global:
    """A reference to a module-level name of torch, written as a pickle GLOBAL."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):                     # pickle's save_reduce wants a callable
        raise TypeError("a reference, not a function")


class _StorageRef:
    def __init__(self, key, kind, numel):
        self.key, self.kind, self.numel = key, kind, numel


class _Writer(pickle._Pickler):
    """Pickles arrays the way ``torch.save`` pickles tensors (pure-Python pickler, so that the
    torch names can be written without torch)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, f):
        super().__init__(f, protocol=2)
        self.arrays = []

    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            return ("storage", _Global("torch", obj.kind), obj.key, "cpu", obj.numel)
        return None

    def _save_global_ref(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))

    def _save_array(self, arr):
        arr = np.asarray(arr, order="C")
        kind = _STORAGE_OF.get(arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1
                               else arr.dtype)
        if kind is None:
            raise TypeError(f"arrays of type {arr.dtype} have no torch storage here")
        ref = _StorageRef(str(len(self.arrays)), kind, arr.size)
        self.arrays.append(arr.astype(arr.dtype.newbyteorder("<"), copy=False))
        strides, step = [], 1
        for dim in reversed(arr.shape):
            strides.insert(0, step)
            step *= dim
        args = (ref, 0, tuple(arr.shape), tuple(strides), False, collections.OrderedDict())
        self.save_reduce(_Global("torch._utils", "_rebuild_tensor_v2"), args, obj=arr)

    dispatch[_Global] = _save_global_ref
    dispatch[np.ndarray] = _save_array


def _aligned_entry(zf, name, data):
    """Write a stored entry whose data starts on a 64-byte boundary (torch's "FB" padding)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    header = 30 + len(name.encode("utf-8"))
    pad = (-(zf.fp.tell() + header + 4)) % _ALIGN
    info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
    with zf.open(info, "w") as out:
        out.write(data)


def write_torch(f, obj, archive="archive"):
    """Write ``obj`` (dicts, lists, strings, numbers and numpy arrays) to the binary file
    ``f`` in ``torch.save``'s zip format; ``torch.load`` returns it with tensors for the
    arrays (also under ``weights_only=True``)."""
    import io
    buffer = io.BytesIO()
    writer = _Writer(buffer)
    writer.dump(obj)
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        _aligned_entry(zf, f"{archive}/data.pkl", buffer.getvalue())
        _aligned_entry(zf, f"{archive}/byteorder", b"little")
        for i, arr in enumerate(writer.arrays):
            _aligned_entry(zf, f"{archive}/data/{i}", arr.tobytes())
        _aligned_entry(zf, f"{archive}/version", b"3\n")
