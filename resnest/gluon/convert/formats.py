"""The weight-file formats: MXNet ``.params``, PyTorch ``.pth`` and ``.safetensors``.

Each is recognised by its content, not its name: a ``.params`` file starts with MXNet's
NDArray-list magic number, a ``.pth`` is ``torch.save``'s zip archive (or its legacy stream,
read only; see :mod:`.torchfile`), a ``.safetensors`` file is an 8-byte little-endian header
length, a JSON header (``{name: {dtype, shape, data_offsets}}``, optional ``__metadata__`` of
strings) and the raw little-endian bytes. None of them needs PyTorch or the ``safetensors``
package. Arrays travel as numpy arrays under the names the file uses.

Metadata (the class names, the model) has a home in each format: ``__metadata__`` of a
safetensors file (values are strings; lists are JSON), extra keys beside ``state_dict`` in a
``.pth`` (the training-checkpoint convention of timm and of the authors' scripts), and the JSON
beside a ``.params`` that ``train.py`` writes with every checkpoint.
"""
import json
import os
import struct

import numpy as np

from ..utils.errors import UserError
from ..utils.io import atomic_write
from .torchfile import is_torch_legacy, is_torch_zip, read_torch, write_torch

__all__ = ["FORMATS", "format_of", "format_for_path", "read_arrays", "write_arrays",
           "read_safetensors", "safetensors_metadata", "write_safetensors"]

FORMATS = ("params", "pth", "safetensors")
_EXTENSIONS = {".params": "params", ".pth": "pth", ".pt": "pth", ".bin": "pth",
               ".safetensors": "safetensors"}
_MXNET_MAGIC = 0x112                      # kMXAPINDArrayListMagic, first 8 bytes of .params
_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "bf16", "I64": "<i8",
              "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}
_ST_CODES = {np.dtype(v): k for k, v in _ST_DTYPES.items() if v != "bf16"}


def format_for_path(path):
    """The format a file of this name should be written in, from its extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in _EXTENSIONS:
        raise UserError(f"cannot tell the format of {path} from its extension; name it "
                        f"{', '.join(sorted(_EXTENSIONS))}.")
    return _EXTENSIONS[ext]


def _safetensors_header(f, size):
    head = f.read(8)
    if len(head) < 8:
        return None
    n, = struct.unpack("<Q", head)
    if not 2 <= n <= size - 8:
        return None
    raw = f.read(n)
    if not raw.startswith(b"{"):
        return None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return (header, 8 + n) if isinstance(header, dict) else None


def format_of(path):
    """``'params'``, ``'pth'`` or ``'safetensors'`` by the file's content, or None."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if _safetensors_header(f, size) is not None:      # byte 8 is "{"; in .params it is 0
            return "safetensors"
        f.seek(0)
        head = f.read(8)
        if len(head) == 8 and struct.unpack("<Q", head)[0] == _MXNET_MAGIC:
            return "params"
    if is_torch_zip(path) or is_torch_legacy(path):
        return "pth"
    return None


def safetensors_metadata(path):
    """The ``__metadata__`` of a safetensors file (its header only is read)."""
    with open(path, "rb") as f:
        found = _safetensors_header(f, os.path.getsize(path))
    if found is None:
        raise ValueError("no safetensors header")
    return found[0].get("__metadata__") or {}


def read_safetensors(path):
    """``(arrays, metadata)`` of a safetensors file; bfloat16 is widened to float32."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        found = _safetensors_header(f, size)
        if found is None:
            raise ValueError("no safetensors header")
        header, start = found
        meta = header.pop("__metadata__", None) or {}
        arrays = {}
        for name, info in header.items():
            begin, stop = info["data_offsets"]
            dtype = _ST_DTYPES.get(info["dtype"])
            if dtype is None:
                raise ValueError(f"tensor {name} has the unsupported dtype {info['dtype']}")
            count = int(np.prod(info["shape"], dtype=np.int64))
            width = 2 if dtype == "bf16" else np.dtype(dtype).itemsize
            if stop - begin != count * width or start + stop > size:
                raise ValueError(f"tensor {name} has inconsistent offsets")
            f.seek(start + begin)
            raw = f.read(stop - begin)
            if dtype == "bf16":
                flat = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
            else:
                flat = np.frombuffer(raw, dtype).astype(np.dtype(dtype).newbyteorder("="))
            arrays[name] = flat.reshape(info["shape"])
    return arrays, meta


def write_safetensors(f, arrays, metadata=None):
    """Write ``arrays`` (name -> numpy array) and string ``metadata`` to the binary file
    ``f``: tensors in name order, contiguous, the header padded to 8 bytes as the reference
    implementation does."""
    header, offset, blobs = {}, 0, []
    for name in sorted(arrays):
        arr = np.asarray(arrays[name], order="C")
        code = _ST_CODES.get(arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype)
        if code is None:
            raise TypeError(f"arrays of type {arr.dtype} have no safetensors dtype here")
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    f.write(struct.pack("<Q", len(raw)))
    f.write(raw)
    for data in blobs:
        f.write(data)


def _read_params(path):
    import mxnet as mx
    loaded = mx.nd.load(path)
    if not isinstance(loaded, dict):
        raise ValueError("a list of arrays, not named parameters")
    return {k: v.asnumpy() for k, v in loaded.items()}


def read_arrays(path):
    """``(format, payload)`` of a weights file: for ``params`` and ``safetensors`` a pair
    ``(arrays, metadata)``, for ``pth`` the object ``torch.save`` wrote.

    Raises
    ------
    UserError
        The file is missing, of no known format, or damaged.
    """
    if not os.path.isfile(path):
        raise UserError(f"weights file {path} does not exist.")
    fmt = format_of(path)
    if fmt is None:
        raise UserError(f"weights file {path} is neither an MXNet .params, a PyTorch .pth nor "
                        "a .safetensors file (or it is truncated).")
    try:
        if fmt == "params":
            return fmt, (_read_params(path), {})
        if fmt == "safetensors":
            return fmt, read_safetensors(path)
        return fmt, read_torch(path)
    except UserError:
        raise
    except Exception as err:                       # any damage inside a recognised file
        raise UserError(f"weights file {path} looks like a {fmt} file but cannot be read "
                        f"({type(err).__name__}: {err}); it is truncated or corrupt.") from None


def write_arrays(path, fmt, payload, atomic=True):
    """Write ``payload`` to ``path`` atomically (complete or not at all; ``atomic=False`` when
    ``path`` is already a group's temporary file): for ``params`` and ``safetensors`` a pair
    ``(arrays, metadata)`` (a ``.params`` keeps no metadata), for ``pth`` the object to
    save."""
    def write(tmp):
        if fmt == "params":
            import mxnet as mx
            arrays, _ = payload
            mx.nd.save(tmp, {k: mx.nd.array(v, dtype=v.dtype) for k, v in arrays.items()})
            return
        with open(tmp, "wb") as f:
            if fmt == "safetensors":
                write_safetensors(f, *payload)
            else:
                write_torch(f, payload)
    if atomic:
        atomic_write(path, write)
    else:
        write(path)
