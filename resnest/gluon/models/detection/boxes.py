"""Box arithmetic in the graph: corner <-> centre, the R-CNN delta coding, clipping, IoU.

Conventions are GluonCV's (``nn/bbox.py``, ``nn/coder.py``): boxes are corners
``(x1, y1, x2, y2)`` in input pixels; the width of a box is ``x2 - x1`` (no ``+ 1``) in the
delta coding and the IoU, but ``x2 - x1 + 1`` in the RPN's minimum-size test and the FPN level
assignment. Every function takes ``F`` (``mx.nd`` or ``mx.sym``) and works for any leading
batch shape by broadcasting.
"""

__all__ = ["corner_to_center", "decode_boxes", "encode_boxes", "image_window",
           "clip_to_window", "pairwise_iou"]


def corner_to_center(F, boxes):
    """``(..., 4)`` corners -> four ``(..., 1)`` arrays ``cx, cy, w, h``."""
    x1, y1, x2, y2 = F.split(boxes, axis=-1, num_outputs=4)
    w, h = x2 - x1, y2 - y1
    return x1 + 0.5 * w, y1 + 0.5 * h, w, h


def decode_boxes(F, deltas, anchors, stds, clip=None):
    """Apply ``(dx, dy, dw, dh)`` deltas (scaled by ``stds``) to ``anchors`` (corners);
    ``dw, dh`` are capped at ``clip`` before the exponential. Shapes broadcast."""
    ax, ay, aw, ah = corner_to_center(F, anchors)
    dx, dy, dw, dh = F.split(deltas, axis=-1, num_outputs=4)
    cx = F.broadcast_add(F.broadcast_mul(dx * stds[0], aw), ax)
    cy = F.broadcast_add(F.broadcast_mul(dy * stds[1], ah), ay)
    dw, dh = dw * stds[2], dh * stds[3]
    if clip is not None:
        dw, dh = F.minimum(dw, clip), F.minimum(dh, clip)
    half_w = F.broadcast_mul(F.exp(dw), aw) * 0.5
    half_h = F.broadcast_mul(F.exp(dh), ah) * 0.5
    return F.concat(cx - half_w, cy - half_h, cx + half_w, cy + half_h, dim=-1)


def encode_boxes(F, boxes, anchors, stds):
    """The deltas that :func:`decode_boxes` turns ``anchors`` into ``boxes`` with (same
    shapes)."""
    gx, gy, gw, gh = corner_to_center(F, boxes)
    ax, ay, aw, ah = corner_to_center(F, anchors)
    return F.concat((gx - ax) / aw / stds[0], (gy - ay) / ah / stds[1],
                    F.log(gw / aw) / stds[2], F.log(gh / ah) / stds[3], dim=-1)


def image_window(F, img):
    """``(1, 1, 4)`` = ``(W, H, W, H)`` of an NCHW batch, in its dtype (no shape read)."""
    w = F.contrib.arange_like(img, axis=3, start=1).slice_axis(axis=0, begin=-1, end=None)
    h = F.contrib.arange_like(img, axis=2, start=1).slice_axis(axis=0, begin=-1, end=None)
    return F.concat(w, h, w, h, dim=0).reshape((1, 1, 4))


def clip_to_window(F, boxes, window):
    """Clip ``(B, N, 4)`` corners to ``[0, W] x [0, H]`` (``window`` from
    :func:`image_window`)."""
    return F.broadcast_minimum(F.maximum(boxes, 0.0), window)


def pairwise_iou(F, a, b):
    """IoU of ``a`` ``(B, N, 4)`` against ``b`` ``(B, M, 4)`` (``B`` may be 1 on either side
    to broadcast): ``(B, N, M)``."""
    ax1, ay1, ax2, ay2 = F.split(a.expand_dims(2), axis=-1, num_outputs=4, squeeze_axis=True)
    bx1, by1, bx2, by2 = F.split(b.expand_dims(1), axis=-1, num_outputs=4, squeeze_axis=True)
    iw = F.relu(F.broadcast_minimum(ax2, bx2) - F.broadcast_maximum(ax1, bx1))
    ih = F.relu(F.broadcast_minimum(ay2, by2) - F.broadcast_maximum(ay1, by1))
    inter = iw * ih
    area_a = F.relu(ax2 - ax1) * F.relu(ay2 - ay1)
    area_b = F.relu(bx2 - bx1) * F.relu(by2 - by1)
    union = F.broadcast_sub(F.broadcast_add(area_a, area_b), inter)
    return inter / F.maximum(union, 1e-12)
