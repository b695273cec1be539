"""ResNeSt for MXNet Gluon: layers, models, registry, weights store, data and training.

>>> from resnest.gluon import resnest50, get_model, list_models
"""
from .errors import UserError
from .layers import DropBlock, SplitAttentionConv, set_drop_prob
from .models import *  # noqa: F401,F403
from .models import __all__ as _model_names
from .pretrained import PRETRAINED
from .registry import get_model, list_models, register_model

__all__ = ["UserError", "DropBlock", "SplitAttentionConv", "set_drop_prob", "PRETRAINED",
           "get_model", "list_models", "register_model"] + list(_model_names)
