"""Training targets, built in the graph for a whole batch (GluonCV builds the RPN's in its data
loader and loops over images for the rest; the rules are its own).

Ground truth comes padded: ``gt_boxes (B, M, 4)`` corners and ``gt_labels (B, M)`` or
``(B, M, 1)`` class indices, padding rows labelled -1.

- RPN (``rpn_target.py``): an anchor outside the image is never sampled; an anchor is positive
  when its best IoU is >= ``pos_iou`` or it is a best anchor of some ground truth, negative
  when its best IoU is < ``neg_iou`` (this wins over "best anchor"); at most
  ``num_sample * pos_ratio`` positives and ``num_sample`` in all are drawn at random. Targets:
  class 1 / 0 / -1 (ignore), deltas to the matched box (stds 1) with a mask on positives.
- R-CNN (``rcnn_target.py``): the proposals plus the ground-truth boxes; positive when the
  best IoU is >= ``pos_iou``, ignored when the proposal is padding, negative otherwise; the
  first ``max_pos`` samples are positives drawn at random (negatives fill what positives
  lack), the rest negatives (then leftover positives), each region at most once (GluonCV's
  second draw slices its shuffled index instead of what the first left, so it can draw a
  region twice and never draws some). Targets: class ``label + 1`` / 0 / -1,
  and for the first ``max_pos`` samples per-class deltas (stds 0.1, 0.1, 0.2, 0.2) with a mask
  on the true class of positives.
"""
import numpy as np

from .boxes import encode_boxes, pairwise_iou
from .indexing import batch_ids, gather_rows

__all__ = ["rpn_targets", "sample_rois", "rcnn_targets", "mask_targets"]

_EPS = float(np.spacing(np.float32(1.0)))


def _random_rank(F, chosen):
    """The rank (0 first) of each chosen entry of ``chosen (B, N)`` in a random order; the
    others rank after all chosen ones."""
    key = chosen * (1 + F.random.uniform_like(chosen))
    return F.argsort(F.argsort(key, axis=1, is_ascend=False), axis=1)


def _labels(F, gt_labels):
    return gt_labels.reshape((0, -1))                       # (B, M)


def rpn_targets(F, anchors, gt_boxes, gt_labels, window, num_sample=256, pos_iou=0.7,
                neg_iou=0.3, pos_ratio=0.5):
    """``(cls_targets (B, N), box_targets (B, N, 4), box_masks (B, N, 4))`` for ``anchors``
    ``(1, N, 4)`` of an image of ``window`` ``(1, 1, 4)`` = (W, H, W, H)."""
    valid_gt = (_labels(F, gt_labels) >= 0).expand_dims(1)                  # (B, 1, M)
    ax1, ay1, ax2, ay2 = F.split(anchors, axis=-1, num_outputs=4)
    w, h = F.split(F.slice_axis(window, axis=-1, begin=0, end=2), axis=-1, num_outputs=2)
    inside = (ax1 >= 0) * (ay1 >= 0) * F.broadcast_lesser(ax2, w) * F.broadcast_lesser(ay2, h)
    ious = pairwise_iou(F, anchors, gt_boxes)                               # (B, N, M)
    ious = F.where(F.broadcast_like(F.broadcast_mul(inside, valid_gt), ious), ious,
                   F.ones_like(ious) * -1)
    best_iou, match = ious.max(axis=-1), ious.argmax(axis=-1)
    best_of_gt = F.broadcast_greater(ious + _EPS, ious.max(axis=1, keepdims=True))
    best_of_gt = F.broadcast_mul(best_of_gt, valid_gt).sum(axis=-1) > 0
    pos = F.maximum(best_of_gt, best_iou >= pos_iou)
    neg = (best_iou < neg_iou) * (best_iou >= 0)
    pos = pos * (1 - neg)
    pos = pos * (_random_rank(F, pos) < int(round(num_sample * pos_ratio)))
    quota = num_sample - pos.sum(axis=1, keepdims=True)
    neg = neg * F.broadcast_lesser(_random_rank(F, neg), quota)
    cls_targets = pos - (1 - pos - neg)                                     # 1 / 0 / -1
    matched = gather_rows(F, gt_boxes, match)
    codes = encode_boxes(F, matched, F.broadcast_like(anchors, matched), (1., 1., 1., 1.))
    masks = F.broadcast_like(pos.expand_dims(-1), codes)
    return cls_targets, F.where(masks, codes, F.zeros_like(codes)), masks


def sample_rois(F, proposals, scores, gt_boxes, gt_labels, num_sample=512, pos_iou=0.5,
                max_pos=128):
    """Draw ``num_sample`` regions per image from the proposals ``(B, P, 4)`` (scores
    ``(B, P, 1)``, -1 for padding) and the ground-truth boxes: ``(rois (B, S, 4),
    samples (B, S): +1 / -1 / 0 ignore, matches (B, S): index into the ground truth)``."""
    valid_gt = _labels(F, gt_labels) >= 0                                   # (B, M)
    rois = F.concat(proposals, gt_boxes, dim=1)
    valid = F.concat(scores.reshape((0, -1)) >= 0, valid_gt, dim=1)         # (B, P + M)
    ious = pairwise_iou(F, rois, gt_boxes)
    ious = F.where(F.broadcast_like(valid_gt.expand_dims(1), ious), ious, F.ones_like(ious) * -1)
    best_iou, match = ious.max(axis=-1), ious.argmax(axis=-1)
    is_pos = best_iou >= pos_iou
    # GluonCV's marks: 3 positive, 2 negative, 0 ignored (padding that is not positive).
    mark = F.where(is_pos, F.ones_like(best_iou) * 3, valid * 2)
    jitter = F.random.uniform_like(mark) * 0.5
    first = F.argsort(mark + jitter, axis=1, is_ascend=False)
    taken = F.argsort(first, axis=1) < max_pos
    # The rest: negatives first (4), then leftover positives (3), ignored last.
    rest = F.where(taken, F.ones_like(mark) * -1, F.where(mark == 2, mark * 2, mark)) + jitter
    second = F.argsort(rest, axis=1, is_ascend=False)
    index = F.concat(F.slice_axis(first, axis=1, begin=0, end=max_pos),
                     F.slice_axis(second, axis=1, begin=0, end=num_sample - max_pos), dim=1)
    picked = gather_rows(F, mark, index)
    samples = (picked == 3) - (picked == 2)
    return gather_rows(F, rois, index), samples, gather_rows(F, match, index)


def _class_ids(F, cls_pred):
    """``(1, 1, C)`` = 0 .. C-1 in the dtype of ``cls_pred (B, S, C + 1)``."""
    ids = F.contrib.arange_like(cls_pred, axis=-1)
    return F.slice_axis(ids, axis=0, begin=0, end=-1).reshape((1, 1, -1))


def rcnn_targets(F, rois, samples, matches, gt_boxes, gt_labels, cls_pred, max_pos=128,
                 stds=(0.1, 0.1, 0.2, 0.2)):
    """``(cls_targets (B, S), box_targets (B, K, C, 4), box_masks (B, K, C, 4),
    class_masks (B, K, C))`` for the regions of :func:`sample_rois` (``cls_pred`` only gives
    the class count C and the dtype); the box targets cover its first K = ``max_pos``."""
    labels = gather_rows(F, _labels(F, gt_labels), matches)
    cls_targets = F.where(samples > 0, labels + 1, F.ones_like(labels) * -1)
    cls_targets = F.where(samples < 0, F.zeros_like(labels), cls_targets)
    rois, samples, matches, labels = [F.slice_axis(a, axis=1, begin=0, end=max_pos)
                                      for a in (rois, samples, matches, labels)]
    codes = encode_boxes(F, gather_rows(F, gt_boxes, matches), rois, stds)       # (B, K, 4)
    same = F.broadcast_equal(labels.expand_dims(-1), _class_ids(F, cls_pred))
    same = F.broadcast_mul(same, (samples > 0).expand_dims(-1))             # (B, K, C)
    masks = F.broadcast_axis(same.expand_dims(-1), axis=3, size=4)
    targets = F.broadcast_like(codes.expand_dims(2), masks)
    return cls_targets, F.where(masks, targets, F.zeros_like(targets)), masks, same


def mask_targets(F, rois, matches, class_masks, gt_masks, mask_size):
    """``(targets, weights)``, both ``(B, K, C, h, w)``, for the first K samples (``rois
    (B, K, 4)``, ``matches (B, K)``, ``class_masks (B, K, C)`` from :func:`rcnn_targets`):
    the matched ground-truth mask of ``gt_masks (B, M, H, W)`` (0/1 at input resolution)
    cropped to the region by ROIAlign at ``mask_size = (h, w)``, weighted on the positive's
    class only (GluonCV's ``MaskTargetGenerator``)."""
    height, width = mask_size
    per_image = F.ones_like(F.contrib.arange_like(gt_masks, axis=1)).sum()    # M
    flat = F.broadcast_add(F.broadcast_mul(batch_ids(F, matches), per_image), matches)
    regions = F.concat(flat.reshape((-1, 1)), rois.reshape((-1, 4)), dim=-1)
    pooled = F.contrib.ROIAlign(gt_masks.reshape((-3, 0, 0)).expand_dims(1), regions,
                                mask_size, 1.0, sample_ratio=2)              # (B*K, 1, h, w)
    weights = F.broadcast_axis(class_masks.reshape((0, 0, 0, 1, 1)), axis=(3, 4),
                               size=(height, width))
    pooled = pooled.reshape_like(F.slice_axis(weights, axis=2, begin=0, end=1))
    return F.broadcast_like(pooled, weights), weights
