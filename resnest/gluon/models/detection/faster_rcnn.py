"""Faster R-CNN with a feature pyramid on the ResNeSt backbone (GluonCV's
``faster_rcnn_fpn_syncbn_resnest*_coco``, rebuilt on :class:`~resnest.gluon.models.
features.ResNetFeatures`).

>>> net = get_model("faster_rcnn_fpn_resnest50_coco", pretrained=True)
>>> ids, scores, boxes = net(x)               # x: (1, 3, H, W), normalised, any H and W
>>> # (1, C * 1000, 1), (1, C * 1000, 1), (1, C * 1000, 4); suppressed rows are -1

Training: ``net(x, gt_boxes, gt_labels)`` under ``autograd.record()`` returns
:class:`TrainOutputs`, what the RPN and R-CNN losses take. A hybridized network caches one
graph per call signature and rebuilds it when the signature changes.
"""
from dataclasses import dataclass
from typing import NamedTuple, Tuple

import mxnet as mx
from mxnet.gluon import nn

from .boxes import decode_boxes, image_window
from .fpn import FPN, FPN_NORM_KWARGS
from .heads import BoxHead
from .indexing import batch_ids
from .roi import pyramid_roi_align
from .rpn import RPN
from .targets import rcnn_targets, rpn_targets, sample_rois

__all__ = ["RCNNConfig", "TrainOutputs", "FasterRCNNFPN"]


@dataclass(frozen=True)
class RCNNConfig:
    """Settings of the detector, GluonCV's for its FPN ResNeSt models (``predefined_models.
    py``, ``get_faster_rcnn``, ``RPN``, ``RCNNTargetSampler``); names follow GluonCV's
    arguments (``rpn_test_post_nms``, ``num_sample``, ...)."""

    fpn_channels: int = 256
    rpn_channels: int = 256
    box_convs: int = 4
    box_channels: int = 256
    box_units: int = 1024
    strides: Tuple[int, ...] = (4, 8, 16, 32, 64)               # P2 .. P6
    anchor_sizes: Tuple[float, ...] = (32, 64, 128, 256, 512)    # base_size 16 x scales
    anchor_ratios: Tuple[float, ...] = (0.5, 1.0, 2.0)
    clip: float = 4.14                                            # cap of dw, dh
    rpn_nms_thresh: float = 0.7
    rpn_train_pre_nms: int = 12000
    rpn_train_post_nms: int = 2000
    rpn_test_pre_nms: int = 6000
    rpn_test_post_nms: int = 1000
    rpn_min_size: float = 1.0
    rpn_num_sample: int = 256
    rpn_pos_iou_thresh: float = 0.7
    rpn_neg_iou_thresh: float = 0.3
    rpn_pos_ratio: float = 0.5
    roi_size: Tuple[int, int] = (7, 7)
    roi_sample_ratio: int = 2
    roi_canonical_size: float = 224.0       # a region this big pools from P4 (FPN eq. 1)
    num_sample: int = 512
    pos_iou_thresh: float = 0.5
    pos_ratio: float = 0.25
    box_stds: Tuple[float, ...] = (0.1, 0.1, 0.2, 0.2)
    score_thresh: float = 0.01              # class scores at or below are dropped (id -1)
    nms_thresh: float = 0.5                 # per-class NMS
    nms_topk: int = -1                      # candidates per class entering NMS (-1: all)

    @property
    def max_pos(self):
        """Positive R-CNN samples per image at most."""
        return int(round(self.num_sample * self.pos_ratio))

    def rpn_numbers(self, training):
        """``(pre_nms, post_nms)`` of the RPN (post capped by pre, as GluonCV's)."""
        pre, post = ((self.rpn_train_pre_nms, self.rpn_train_post_nms) if training
                     else (self.rpn_test_pre_nms, self.rpn_test_post_nms))
        return max(1, pre), max(1, min(post, pre))


class TrainOutputs(NamedTuple):
    """The training forward: predictions and their targets, per image of the batch.

    ``cls_pred (B, S, C + 1)`` / ``cls_targets (B, S)`` (class + 1, 0 background, -1 ignore);
    ``box_pred`` / ``box_targets`` / ``box_masks`` ``(B, K, C, 4)`` for the first K sampled
    regions (K = ``max_pos``, the positives first); ``rpn_scores (B, N, 1)`` raw logits /
    ``rpn_cls_targets (B, N)`` (1, 0, -1 ignore); ``rpn_deltas`` / ``rpn_box_targets`` /
    ``rpn_box_masks`` ``(B, N, 4)``; ``rois (B, S, 4)``, ``samples (B, S)`` (+1 / -1 / 0) and
    ``matches (B, S)`` (index into the ground truth) of the sampled regions.
    """

    cls_pred: object
    cls_targets: object
    box_pred: object
    box_targets: object
    box_masks: object
    rpn_scores: object
    rpn_cls_targets: object
    rpn_deltas: object
    rpn_box_targets: object
    rpn_box_masks: object
    rois: object
    samples: object
    matches: object


def _batch_rois(F, boxes):
    """``(B, N, 4)`` -> ``(B * N, 5)`` rows ``(batch index, x1, y1, x2, y2)``."""
    bid = batch_ids(F, F.slice_axis(boxes, axis=-1, begin=0, end=1).reshape((0, -1)))
    return F.concat(bid.expand_dims(-1), boxes, dim=-1).reshape((-1, 5))


class FasterRCNNFPN(nn.HybridBlock):
    """Faster R-CNN FPN: ``backbone`` (stage outputs C2 .. C5) -> ``fpn`` -> ``rpn``,
    multi-level ROIAlign, ``box_head``, ``class_predictor`` and ``box_predictor``.

    Parameters
    ----------
    backbone : ResNetFeatures
        Built with ``out_indices=(1, 2, 3, 4)``.
    classes : sequence of str
        Foreground class names (``C = len(classes)``).
    config : RCNNConfig
    norm_layer, norm_kwargs :
        Normalisation of the pyramid and the box head (the backbone has its own); the pyramid
        adds :data:`~.fpn.FPN_NORM_KWARGS` (GluonCV's eps and fixed gamma).
    """

    def __init__(self, backbone, classes, config=RCNNConfig(), norm_layer=nn.BatchNorm,
                 norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        self.classes, self.config = list(classes), config
        self._signature = None
        cfg, norm_kwargs = config, dict(norm_kwargs or {})
        with self.name_scope():
            self.backbone = backbone
            self.fpn = FPN([f.channels for f in backbone.feature_info], cfg.fpn_channels,
                           norm_layer, {**norm_kwargs, **FPN_NORM_KWARGS})
            self.rpn = RPN(cfg.rpn_channels, cfg.fpn_channels, cfg.strides, cfg.anchor_sizes,
                           cfg.anchor_ratios, cfg.clip, cfg.rpn_min_size, cfg.rpn_nms_thresh,
                           *cfg.rpn_numbers(False))
            self.box_head = BoxHead(cfg.fpn_channels, cfg.roi_size, cfg.box_convs,
                                    cfg.box_channels, cfg.box_units, norm_layer, norm_kwargs)
            self.class_predictor, self.box_predictor = self._predictors(len(self.classes))

    @property
    def num_class(self):
        """Number of foreground classes."""
        return len(self.classes)

    def _predictors(self, num_class):
        units = self.config.box_units
        return (nn.Dense(num_class + 1, in_units=units, weight_initializer=mx.init.Normal(0.01),
                         prefix="class_predictor_"),
                nn.Dense(num_class * 4, in_units=units, weight_initializer=mx.init.Normal(0.001),
                         prefix="box_predictor_"))

    def forward(self, x, *args):
        # One cached graph per signature (inference, training, training with masks).
        if self._active and self._signature not in (None, len(args)):
            self._clear_cached_op()
        self._signature = len(args)
        out = super().forward(x, *args)
        return self._wrap(out) if args else out

    def _wrap(self, out):
        return TrainOutputs(*out)

    def _pool(self, F, levels, boxes, roi_size):
        """Pool ``boxes (B, N, 4)`` from P2 .. P5: ``(B * N, C, h, w)``."""
        cfg = self.config
        return pyramid_roi_align(F, levels[:4], _batch_rois(F, boxes), roi_size,
                                 cfg.strides[:4], 2, cfg.roi_sample_ratio,
                                 cfg.roi_canonical_size)

    def hybrid_forward(self, F, x, gt_boxes=None, gt_labels=None):
        levels = self.fpn(*self.backbone(x))
        if gt_boxes is None:
            return self._detect(F, x, levels)
        return self._train(F, x, levels, gt_boxes, gt_labels)

    def _classify(self, F, levels, boxes, count):
        """Box-head features ``(B * count, units)`` and class logits ``(B, count, C + 1)`` of
        ``count`` regions ``boxes`` per image."""
        feat = self.box_head(self._pool(F, levels, boxes, self.config.roi_size))
        return feat, self.class_predictor(feat).reshape((-1, count, self.num_class + 1))

    def _detect(self, F, x, levels):
        pre_nms, post_nms = self.config.rpn_numbers(False)
        proposals = self.rpn.propose(F, x, levels, pre_nms, post_nms)[0]
        feat, cls_pred = self._classify(F, levels, proposals, post_nms)
        deltas = self.box_predictor(feat).reshape((-1, post_nms, self.num_class, 4))
        return self._decode(F, cls_pred, deltas, proposals)

    def _decode(self, F, cls_pred, deltas, proposals):
        """Per-class scores, boxes and NMS (GluonCV's ``MultiPerClassDecoder`` + ``box_nms``):
        ``(ids, scores, boxes)`` of shapes ``(B, C * N, 1 / 1 / 4)``, class-major."""
        cfg = self.config
        scores = F.slice_axis(F.softmax(cls_pred, axis=-1), axis=-1, begin=1, end=None)
        ids = F.broadcast_like(F.contrib.arange_like(scores, axis=-1).reshape((1, 1, -1)),
                               scores)
        keep = scores > cfg.score_thresh
        ids = F.where(keep, ids, F.ones_like(ids) * -1)
        scores = F.where(keep, scores, F.zeros_like(scores))
        boxes = decode_boxes(F, deltas.transpose((0, 2, 1, 3)), proposals.expand_dims(1),
                             cfg.box_stds, cfg.clip)                      # (B, C, N, 4)
        rows = F.concat(ids.transpose((0, 2, 1)).expand_dims(-1),
                        scores.transpose((0, 2, 1)).expand_dims(-1), boxes, dim=-1)
        rows = F.contrib.box_nms(rows, overlap_thresh=cfg.nms_thresh, topk=cfg.nms_topk,
                                 valid_thresh=0.0001, id_index=0, score_index=1, coord_start=2,
                                 force_suppress=False).reshape((0, -1, 6))
        return (F.slice_axis(rows, axis=-1, begin=0, end=1),
                F.slice_axis(rows, axis=-1, begin=1, end=2),
                F.slice_axis(rows, axis=-1, begin=2, end=6))

    def _train_parts(self, F, x, levels, gt_boxes, gt_labels):
        """Every training output by :class:`TrainOutputs` field name, plus ``class_masks``
        ``(B, K, C)`` (the positives' classes among the first K samples)."""
        cfg = self.config
        proposals, scores, rpn_scores, rpn_deltas, anchors = self.rpn.propose(
            F, x, levels, *cfg.rpn_numbers(True))
        with mx.autograd.pause():
            rpn_cls_t, rpn_box_t, rpn_box_m = rpn_targets(
                F, anchors, gt_boxes, gt_labels, image_window(F, x), cfg.rpn_num_sample,
                cfg.rpn_pos_iou_thresh, cfg.rpn_neg_iou_thresh, cfg.rpn_pos_ratio)
            rois, samples, matches = sample_rois(F, proposals, scores, gt_boxes, gt_labels,
                                                 cfg.num_sample, cfg.pos_iou_thresh, cfg.max_pos)
        feat, cls_pred = self._classify(F, levels, rois, cfg.num_sample)
        with mx.autograd.pause():
            cls_t, box_t, box_m, class_masks = rcnn_targets(
                F, rois, samples, matches, gt_boxes, gt_labels, F.stop_gradient(cls_pred),
                cfg.max_pos, cfg.box_stds)
        head = F.slice_axis(feat.reshape((-1, cfg.num_sample, cfg.box_units)), axis=1,
                            begin=0, end=cfg.max_pos).reshape((-3, 0))
        box_pred = self.box_predictor(head).reshape((-1, cfg.max_pos, self.num_class, 4))
        return dict(cls_pred=cls_pred, cls_targets=cls_t, box_pred=box_pred, box_targets=box_t,
                    box_masks=box_m, rpn_scores=rpn_scores, rpn_cls_targets=rpn_cls_t,
                    rpn_deltas=rpn_deltas, rpn_box_targets=rpn_box_t, rpn_box_masks=rpn_box_m,
                    rois=rois, samples=samples, matches=matches, class_masks=class_masks)

    def _train(self, F, x, levels, gt_boxes, gt_labels):
        parts = self._train_parts(F, x, levels, gt_boxes, gt_labels)
        return tuple(parts[k] for k in TrainOutputs._fields)
