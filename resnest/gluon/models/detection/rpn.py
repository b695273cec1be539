"""Region proposal network over the pyramid, as GluonCV's ``rcnn/rpn`` (``multi_level=True``,
``per_level_nms=False``).

One head, shared by every level: 3x3 conv + ReLU, then a 1x1 objectness score (sigmoid, one
per anchor) and a 1x1 box regression (4 per anchor). Proposals: the regression (stds 1, dw/dh
capped at ``clip``) applied to each level's anchors, clipped to the image, boxes thinner than
``min_size`` (``x2 - x1 + 1``) marked invalid (score and box -1); the levels are pooled, NMS
(class-agnostic) keeps at most ``pre_nms`` candidates, and the first ``post_nms`` survivors,
best first, are the proposals (rows of -1 when fewer survive).
"""
import mxnet as mx
from mxnet.gluon import nn

from .anchors import AnchorGrid
from .boxes import clip_to_window, decode_boxes, image_window

__all__ = ["RPNHead", "RPN"]

_RPN_STDS = (1.0, 1.0, 1.0, 1.0)


class RPNHead(nn.HybridBlock):
    """The shared head: ``conv`` (3x3 + ReLU), ``score`` and ``loc`` (1x1), Normal(0.01)
    initialised as GluonCV's. Returns raw ``(B, H*W*A, 1)`` scores and ``(B, H*W*A, 4)``
    deltas, ordered (row, column, anchor)."""

    def __init__(self, channels, in_channels, num_anchors, **kwargs):
        super().__init__(**kwargs)
        init = mx.init.Normal(0.01)
        with self.name_scope():
            self.conv = nn.Conv2D(channels, 3, 1, 1, in_channels=in_channels,
                                  weight_initializer=init)
            self.score = nn.Conv2D(num_anchors, 1, in_channels=channels, weight_initializer=init)
            self.loc = nn.Conv2D(num_anchors * 4, 1, in_channels=channels,
                                 weight_initializer=init)

    def hybrid_forward(self, F, x):
        x = F.relu(self.conv(x))
        score = self.score(x).transpose((0, 2, 3, 1)).reshape((0, -1, 1))
        loc = self.loc(x).transpose((0, 2, 3, 1)).reshape((0, -1, 4))
        return score, loc


class RPN(nn.HybridBlock):
    """Anchors, head and proposals for every pyramid level.

    Parameters
    ----------
    channels, in_channels : int
        Width of the head's 3x3 conv; channels of the pyramid.
    strides, sizes : sequence
        Stride and anchor size of each level (GluonCV: 4..64 and 32..512).
    ratios : sequence of float
        Aspect ratios of the anchors (every level).
    clip, min_size, nms_thresh : float
        Delta cap, minimum proposal side and NMS IoU threshold.

    pre_nms, post_nms : int
        Candidates kept for NMS and proposals returned by ``forward`` (the detector calls
        :meth:`propose` with its training or inference numbers).
    """

    def __init__(self, channels, in_channels, strides, sizes, ratios, clip, min_size,
                 nms_thresh, pre_nms=6000, post_nms=1000, **kwargs):
        super().__init__(**kwargs)
        self._clip, self._min_size, self._nms_thresh = clip, min_size, nms_thresh
        self._pre_nms, self._post_nms = pre_nms, post_nms
        with self.name_scope():
            self.anchor_grids = nn.HybridSequential()      # no parameters
            for stride, size in zip(strides, sizes):
                self.anchor_grids.add(AnchorGrid(stride, size, ratios))
            self.head = RPNHead(channels, in_channels, len(ratios))

    def _proposals(self, F, anchors, score, deltas, window):
        """Decoded, clipped candidates of one level: ``(B, N, 5)`` rows (score, box)."""
        boxes = clip_to_window(F, decode_boxes(F, deltas, anchors, _RPN_STDS, self._clip),
                               window)
        x1, y1, x2, y2 = F.split(boxes, axis=-1, num_outputs=4)
        invalid = ((x2 - x1 + 1) < self._min_size) + ((y2 - y1 + 1) < self._min_size)
        score = F.where(invalid, F.ones_like(score) * -1, score)
        boxes = F.where(F.broadcast_like(invalid, boxes), F.ones_like(boxes) * -1, boxes)
        return F.concat(score, boxes, dim=-1)

    def hybrid_forward(self, F, img, *levels):
        return self.propose(F, img, levels, self._pre_nms, self._post_nms)

    def propose(self, F, img, levels, pre_nms, post_nms):
        """``(proposals (B, post_nms, 4), scores (B, post_nms, 1), raw_scores (B, N, 1),
        raw_deltas (B, N, 4), anchors (1, N, 4))`` for the pyramid ``levels`` of ``img``;
        N counts the anchors of all levels, lowest level first."""
        window = image_window(F, img)
        raw_scores, raw_deltas, anchors, candidates = [], [], [], []
        for grid, feat in zip(self.anchor_grids, levels):
            anchor = grid(feat)
            score, deltas = self.head(feat)
            with mx.autograd.pause():
                candidates.append(self._proposals(
                    F, anchor, F.sigmoid(F.stop_gradient(score)), F.stop_gradient(deltas),
                    window))
            raw_scores.append(score)
            raw_deltas.append(deltas)
            anchors.append(anchor)
        with mx.autograd.pause():
            kept = F.contrib.box_nms(F.concat(*candidates, dim=1), overlap_thresh=self._nms_thresh,
                                     topk=pre_nms, coord_start=1, score_index=0, id_index=-1,
                                     force_suppress=True)
            kept = F.slice_axis(kept, axis=1, begin=0, end=post_nms)
            scores = F.slice_axis(kept, axis=-1, begin=0, end=1)
            proposals = F.slice_axis(kept, axis=-1, begin=1, end=None)
        return (F.stop_gradient(proposals), F.stop_gradient(scores),
                F.concat(*raw_scores, dim=1), F.concat(*raw_deltas, dim=1),
                F.concat(*anchors, dim=1))
