"""Mask R-CNN with a feature pyramid on the ResNeSt backbone: :class:`~.faster_rcnn.
FasterRCNNFPN` plus GluonCV's mask head (``rcnn/mask_rcnn``).

No published weights exist for it: GluonCV offers a ResNeSt Mask R-CNN only through its custom
builder (``custom_mask_rcnn_fpn``), untrained. The box branch here is the published Faster
R-CNN FPN's (7x7 ROIAlign, 4 conv + 1 fc head), so its weights can start one; the mask branch
pools 14x14 (the Mask R-CNN paper's, and GluonCV's custom builder's ROI size) into 28x28 masks.

>>> ids, scores, boxes, masks = net(x)       # masks (B, K, 28, 28) probabilities in each box
>>> out = net(x, gt_boxes, gt_labels, gt_masks)   # training: MaskTrainOutputs
"""
from dataclasses import dataclass
from typing import NamedTuple, Tuple

from .faster_rcnn import FasterRCNNFPN, RCNNConfig, TrainOutputs
from .heads import MaskHead
from .indexing import batch_ids, gather_rows
from .targets import mask_targets
from ...utils.errors import UserError

__all__ = ["MaskRCNNConfig", "MaskTrainOutputs", "MaskRCNNFPN"]


@dataclass(frozen=True)
class MaskRCNNConfig(RCNNConfig):
    """:class:`RCNNConfig` plus the mask branch (GluonCV's ``num_fcn_convs=4``,
    ``mask_channels=256``, ``rcnn_max_dets=1000``)."""

    mask_convs: int = 4
    mask_channels: int = 256
    mask_roi_size: Tuple[int, int] = (14, 14)
    mask_max_dets: int = 1000

    @property
    def mask_size(self):
        """Side of the predicted masks (twice the pooled size)."""
        return (2 * self.mask_roi_size[0], 2 * self.mask_roi_size[1])

    @property
    def mask_dets(self):
        """Detections per image that get a mask (at most the RPN's test proposals)."""
        return min(self.mask_max_dets, *self.rpn_numbers(False))


MaskTrainOutputs = NamedTuple("MaskTrainOutputs", [(f, object) for f in TrainOutputs._fields]
                              + [("mask_pred", object), ("mask_targets", object),
                                 ("mask_weights", object)])
MaskTrainOutputs.__doc__ = (
    ":class:`TrainOutputs` plus ``mask_pred`` (logits), ``mask_targets`` and ``mask_weights`` "
    "``(B, K, C, 28, 28)`` for the first K sampled regions (the weights select the positives' "
    "own class).")


class MaskRCNNFPN(FasterRCNNFPN):
    """Mask R-CNN FPN: :class:`FasterRCNNFPN` and ``mask_head`` (:class:`~.heads.MaskHead`).

    Parameters are those of :class:`FasterRCNNFPN` (``config`` a :class:`MaskRCNNConfig`),
    plus ``mask_norm_layer`` (None, GluonCV's custom builder: no norm in the mask head).
    Inference returns ``(ids, scores, boxes, masks)`` for the ``mask_dets`` best detections
    of each image, best first; training takes ``gt_masks (B, M, H, W)`` as a fourth input.
    """

    def __init__(self, backbone, classes, config=MaskRCNNConfig(), mask_norm_layer=None,
                 mask_norm_kwargs=None, **kwargs):
        super().__init__(backbone, classes, config, **kwargs)
        with self.name_scope():
            self.mask_head = MaskHead(config.fpn_channels, len(self.classes), config.mask_convs,
                                      config.mask_channels, mask_norm_layer, mask_norm_kwargs)

    def _wrap(self, out):
        return MaskTrainOutputs(*out)

    def hybrid_forward(self, F, x, gt_boxes=None, gt_labels=None, gt_masks=None):
        levels = self.fpn(*self.backbone(x))
        if gt_boxes is None:
            return self._detect(F, x, levels)
        if gt_masks is None:
            raise UserError("Mask R-CNN trains on masks: call net(x, gt_boxes, gt_labels, "
                             "gt_masks).")
        parts = self._train_parts(F, x, levels, gt_boxes, gt_labels)
        cfg = self.config
        rois = F.slice_axis(parts["rois"], axis=1, begin=0, end=cfg.max_pos)
        matches = F.slice_axis(parts["matches"], axis=1, begin=0, end=cfg.max_pos)
        parts["mask_pred"] = self._masks(F, levels, rois, cfg.max_pos)
        parts["mask_targets"], parts["mask_weights"] = mask_targets(
            F, F.stop_gradient(rois), matches, parts["class_masks"], gt_masks, cfg.mask_size)
        return tuple(parts[k] for k in MaskTrainOutputs._fields)

    def _masks(self, F, levels, boxes, count):
        """Mask logits ``(B, count, C, h, w)`` of ``count`` boxes per image."""
        pooled = self._pool(F, levels, F.stop_gradient(boxes), self.config.mask_roi_size)
        h, w = self.config.mask_size
        return self.mask_head(pooled).reshape((-1, count, self.num_class, h, w))

    def _detect(self, F, x, levels):
        ids, scores, boxes = super()._detect(F, x, levels)
        count = self.config.mask_dets
        order = F.argsort(scores.reshape((0, -1)), axis=1, is_ascend=False)
        top = F.slice_axis(order, axis=1, begin=0, end=count)               # (B, K)
        ids, scores, boxes = [gather_rows(F, a, top) for a in (ids, scores, boxes)]
        logits = self._masks(F, levels, boxes, count)                      # (B, K, C, h, w)
        cls = F.clip(ids.reshape((0, -1)), 0, self.num_class - 1)           # (B, K)
        bid = batch_ids(F, cls)
        row = F.broadcast_like(F.contrib.arange_like(cls, axis=1).reshape((1, -1)), cls,
                               lhs_axes=(0,), rhs_axes=(0,))
        masks = F.gather_nd(logits, F.stack(bid, row, cls, axis=0))          # (B, K, h, w)
        return ids, scores, boxes, F.sigmoid(masks)
