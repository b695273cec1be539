"""A weights file in our names, and our arrays in another layout's file.

Reading: the arrays of a ``.pth`` (a state_dict, or a checkpoint holding one under
``state_dict`` or ``model``) or ``.safetensors`` are renamed by the one layout whose names
they all are (:mod:`.timm`, :mod:`.torch`, :mod:`.detectron2`, :mod:`.mmdet`); BN counters are
dropped. A name that no layout knows refuses the whole file, in one sentence. Writing: our
arrays renamed, BN counters added where the layout has them, with the metadata each format
keeps (see :mod:`.formats`).
"""
import collections
import json

import numpy as np

from ..checkpoint import record_beside
from ..utils.errors import UserError
from . import detectron2, mmdet, timm, torch
from .formats import format_of, read_arrays, safetensors_metadata
from .names import COUNTER
from .torchfile import is_torch_zip, read_torch

__all__ = ["LAYOUTS", "read_ours", "read_foreign_params", "foreign_class_names",
           "foreign_payload", "clean_meta"]

LAYOUTS = {m.LAYOUT.name: m.LAYOUT for m in (timm, torch, detectron2, mmdet)}
_META_KEYS = ("class_names", "resnest_model", "layout")


def clean_meta(meta):
    """The metadata we use, decoded: class names (a list of strings), our model's name,
    the layout."""
    out = {}
    for key in _META_KEYS:
        value = meta.get(key)
        if key == "class_names" and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        if key == "class_names" and not (isinstance(value, list)
                                         and all(isinstance(v, str) for v in value)):
            value = None
        if value is not None:
            out[key] = value
    return out


def _state_dict(obj, path):
    """``(arrays, metadata)`` of what ``torch.save`` wrote."""
    if isinstance(obj, dict):
        arrays = {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}
        if arrays and len(arrays) == len(obj):
            return arrays, {}
        for key in ("state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and \
                    all(isinstance(v, np.ndarray) for v in inner.values()):
                meta = dict(obj.get("meta") or {}) if isinstance(obj.get("meta"), dict) else {}
                meta.update({k: v for k, v in obj.items() if k in _META_KEYS})
                return inner, meta
    raise UserError(f"{path} holds no state_dict (a dict of tensors, alone or under "
                    "'state_dict' or 'model'); it is not a weights file.")


def _rename(arrays, layout):
    ours, unknown = {}, []
    for name, arr in arrays.items():
        mine = layout.to_ours(name)
        if mine is None:
            unknown.append(name)
        elif mine:
            ours[mine] = arr
    return ours, unknown


def read_ours(path):
    """``(arrays, metadata, layout)`` of any weights file, arrays under our names
    (``layout`` is ``'gluon'`` for a file already in our names).

    Raises
    ------
    UserError
        Unreadable, or names that no layout maps (the sentence counts them and shows some).
    """
    fmt, payload = read_arrays(path)
    if fmt == "params":
        record = record_beside(path)
        meta = {"class_names": record.class_names, "resnest_model": record.model} if record \
            else {}
        return payload[0], clean_meta(meta), "gluon"
    arrays, meta = payload if fmt == "safetensors" else _state_dict(payload, path)
    meta = clean_meta(meta)
    if arrays and all(k.startswith("module.") for k in arrays):      # saved from DataParallel
        arrays = {k[len("module."):]: v for k, v in arrays.items()}
    if meta.get("layout") == "gluon" or set(arrays) <= _our_names(arrays):
        return arrays, meta, "gluon"
    best = None
    for name, layout in LAYOUTS.items():
        ours, unknown = _rename(arrays, layout)
        if not unknown:
            return ours, meta, meta.get("layout", name) if meta.get("layout") in LAYOUTS else name
        if best is None or len(unknown) < len(best[1]):
            best = (layout, unknown)
    layout, unknown = best
    shown = ", ".join(sorted(unknown)[:3])
    raise UserError(f"{path} is not a ResNeSt weights file we can read: {len(unknown)} of its "
                    f"{len(arrays)} names are not ResNeSt names of any layout (closest: "
                    f"{layout.title}; e.g. {shown}).")


def read_foreign_params(path):
    """A ``.pth`` / ``.safetensors`` file's arrays as float32 NDArrays under our names (what
    :func:`resnest.gluon.store.read_params` returns for such a file)."""
    import mxnet as mx
    arrays, _, _ = read_ours(path)
    return {k: mx.nd.array(v, dtype=np.float32 if v.dtype.kind == "f" else v.dtype)
            for k, v in arrays.items()}


def foreign_class_names(path):
    """The class names a converted ``.pth`` / ``.safetensors`` carries, or None (read from the
    safetensors header or the pickle, without the arrays' bytes where the format allows); None
    for any other file."""
    try:
        fmt = format_of(path)
        if fmt == "safetensors":
            meta = safetensors_metadata(path)
        elif fmt == "pth" and is_torch_zip(path):
            obj = read_torch(path, arrays=False)
            meta = obj if isinstance(obj, dict) else {}
        elif fmt == "pth":
            meta = read_ours(path)[1]
        else:
            return None
    except Exception:            # noqa: BLE001 - unreadable: the loader reports it in a sentence
        return None
    return clean_meta(meta).get("class_names")


def _our_names(arrays):
    """The names of ``arrays`` that are already ours."""
    return {k for k in arrays if LAYOUTS["timm"].from_ours(k) is not None}


def foreign_payload(arrays, layout, fmt, meta):
    """What to write for our ``arrays`` in ``layout`` (a :data:`LAYOUTS` value, or None for
    ours) and format ``fmt``: the object for a ``.pth``, ``(arrays, metadata)`` otherwise.
    Returns ``(payload, written, dropped)``: the arrays under their names, and our arrays the
    layout has no place for."""
    if layout is None:
        out, dropped = dict(arrays), []
    else:
        out, dropped = collections.OrderedDict(), []
        for name in arrays:
            theirs = layout.from_ours(name)
            if theirs is None:
                dropped.append(name)
                continue
            out[theirs] = arrays[name]
            if layout.counter and theirs.endswith(".running_var"):   # torch's order
                out[theirs[:-len("running_var")] + COUNTER] = np.array(0, dtype=np.int64)
    meta = {k: v for k, v in meta.items() if v is not None}
    if fmt == "safetensors":
        text = {k: json.dumps(v) if isinstance(v, list) else str(v) for k, v in meta.items()}
        return (out, dict(text, format="pt")), out, dropped
    if fmt == "params":
        return (out, meta), out, dropped
    if layout is not None and layout.name == "detectron2":
        return dict(meta, model=out, __author__="resnest.gluon.convert",
                    matching_heuristics=True), out, dropped
    if layout is not None and layout.name == "mmdet":
        return {"state_dict": out, "meta": meta}, out, dropped
    return (dict(meta, state_dict=out) if meta.get("class_names") else out), out, dropped
