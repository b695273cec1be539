"""Model definitions and the registry: the generic :class:`ResNet`, its backbone form
:class:`ResNetFeatures`, the registered ResNeSt variants, the segmentation models built on the
backbone (:mod:`.segmentation`), and ``get_model`` / ``list_models``.

Every model family is imported here, so that the registry (:mod:`.registry`, which imports
none of them) is complete whenever it is used.
"""
from .registry import TASKS, get_model, list_models, model_task, register_model
from .resnest import *  # noqa: F401,F403  (registers every classifier)
from .resnest import __all__ as _names
from .segmentation import *  # noqa: F401,F403  (registers every segmentation model)
from .segmentation import __all__ as _segmentation
from .features import FeatureInfo, ResNetFeatures
from . import detection  # noqa: F401  (registers the detectors; get_model finds them by name)
from .resnet import Bottleneck, ResNet, ResNetConfig, ResNetTrunk

__all__ = ["Bottleneck", "FeatureInfo", "ResNet", "ResNetConfig", "ResNetFeatures",
           "ResNetTrunk", "TASKS", "get_model", "list_models", "model_task",
           "register_model"] + list(_names) + list(_segmentation)
