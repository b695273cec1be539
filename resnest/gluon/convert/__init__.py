"""Weights to and from other implementations of ResNeSt: timm, the authors' ``resnest.torch``,
Detectron2 and MMDetection, in ``.params``, ``.pth`` or ``.safetensors``.

The parameters correspond one to one; only names change (one name map per layout: :mod:`.timm`,
:mod:`.torch`, :mod:`.detectron2`, :mod:`.mmdet`), never a shape or an order. Layers, from the
bottom: :mod:`.formats` / :mod:`.torchfile` (the files, no PyTorch needed), :mod:`.names` and
the layouts, :mod:`.translate` (any file in our names: what the weights store reads),
:mod:`.identify` (which of our models the arrays are) and :mod:`.files` (``convert_file``).
Names are resolved on first use, so the store can read a PyTorch file without the models.
"""
import importlib

_EXPORTS = {"TARGETS": "files", "convert_file": "files", "LAYOUTS": "translate",
            "read_ours": "translate", "read_foreign_params": "translate",
            "foreign_class_names": "translate"}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
