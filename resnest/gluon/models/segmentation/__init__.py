"""Semantic segmentation on the ResNeSt backbone: GluonCV's DeepLabV3 and FCN heads
(:mod:`.heads`), the network (:mod:`.segnet`), the registered models (:mod:`.models`) and the
published evaluation protocols (:mod:`.evaluation`)."""
from .heads import ASPP, ASPPPooling, DeepLabHead, FCNHead
from .models import *  # noqa: F401,F403  (registers every segmentation model)
from .models import __all__ as _names
from .segnet import SegmentationNet

__all__ = ["ASPP", "ASPPPooling", "DeepLabHead", "FCNHead", "SegmentationNet"] + list(_names)
