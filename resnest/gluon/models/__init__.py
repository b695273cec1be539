"""Model definitions: the generic :class:`ResNet`, its backbone form :class:`ResNetFeatures`
and the registered ResNeSt variants."""
from .resnest import *  # noqa: F401,F403  (registers every model)
from .resnest import __all__ as _names
from .features import FeatureInfo, ResNetFeatures
from .resnet import Bottleneck, ResNet, ResNetConfig, ResNetTrunk

__all__ = ["Bottleneck", "FeatureInfo", "ResNet", "ResNetConfig", "ResNetFeatures",
           "ResNetTrunk"] + list(_names)
