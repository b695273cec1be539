"""Model definitions: the generic :class:`ResNet` and the registered ResNeSt variants."""
from .resnest import *  # noqa: F401,F403  (registers every model)
from .resnest import __all__ as _names
from .resnet import Bottleneck, ResNet, ResNetConfig

__all__ = ["Bottleneck", "ResNet", "ResNetConfig"] + list(_names)
