"""ResNeSt for MXNet Gluon: layers, models, registry, weights store, data, training, inference.

>>> from resnest.gluon import resnest50, get_model, list_models

Names are resolved on first use, so tools that need no MXNet (the RecordIO packer and its
worker processes) can import ``resnest.gluon.data`` without paying for ``import mxnet``.
"""
import importlib

__all__ = ["UserError", "DropBlock", "SplitAttentionConv", "set_drop_prob", "PRETRAINED",
           "get_model", "list_models", "model_task", "register_model"]

# Searched in this order. Model constructors (resnest50, ...) and the registry come from
# "models".
_MODULES = ("models", "layers", "pretrained", "utils.errors")


def __getattr__(name):
    for module in _MODULES:
        value = getattr(importlib.import_module(f".{module}", __name__), name, None)
        if value is not None:
            globals()[name] = value
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    from .models import __all__ as models
    return sorted(set(__all__) | set(models) | set(globals()))
