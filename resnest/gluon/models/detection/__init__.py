"""Detection and instance segmentation on the ResNeSt backbone: Faster R-CNN FPN (GluonCV's
published COCO models, loaded from their files through an explicit name map) and Mask R-CNN
FPN (GluonCV's mask head; no published weights).

>>> net = get_model("faster_rcnn_fpn_resnest50_coco", pretrained=True)
>>> ids, scores, boxes = net(x)
"""
from .faster_rcnn import FasterRCNNFPN, RCNNConfig, TrainOutputs
from .gluoncv_names import anchor_names, gluoncv_names, load_gluoncv_params
from .mask_rcnn import MaskRCNNConfig, MaskRCNNFPN, MaskTrainOutputs
from .zoo import *  # noqa: F401,F403  (registers the detectors)
from .zoo import __all__ as _names

__all__ = ["FasterRCNNFPN", "MaskRCNNFPN", "RCNNConfig", "MaskRCNNConfig", "TrainOutputs",
           "MaskTrainOutputs", "gluoncv_names", "anchor_names",
           "load_gluoncv_params"] + list(_names)
