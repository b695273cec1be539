"""Model definitions and the registry: the generic :class:`ResNet`, its backbone form
:class:`ResNetFeatures`, the registered ResNeSt variants, and ``get_model`` / ``list_models``.

Every model family is imported here, so that the registry (:mod:`.registry`, which imports
none of them) is complete whenever it is used.
"""
from .registry import TASKS, get_model, list_models, model_task, register_model
from .resnest import *  # noqa: F401,F403  (registers every classifier)
from .resnest import __all__ as _names
from .features import FeatureInfo, ResNetFeatures
from . import detection  # noqa: F401  (registers the detectors; get_model finds them by name)
from .resnet import Bottleneck, ResNet, ResNetConfig, ResNetTrunk

__all__ = ["Bottleneck", "FeatureInfo", "ResNet", "ResNetConfig", "ResNetFeatures",
           "ResNetTrunk", "TASKS", "get_model", "list_models", "model_task",
           "register_model"] + list(_names)
