"""RPN anchors: the shapes of one pyramid level, laid over its feature map in the graph.

The shapes are GluonCV's (``rcnn/rpn/anchor.py``, Detectron's convention): a reference box
``(0, 0, stride - 1, stride - 1)`` is reshaped to each aspect ratio keeping its area, with the
width and height rounded to integers (numpy's round-half-to-even), then scaled to ``size``
about its centre ``(stride - 1) / 2``. GluonCV precomputes these on a fixed grid of 384 x 384
cells stored as constant parameters, which caps the input at 1536 pixels; here the grid is
built from the feature map itself, so any input size works, and the stored grids of GluonCV's
files are checked against it when they load (:mod:`.gluoncv_names`).
"""
import numpy as np
from mxnet.gluon import nn

__all__ = ["base_anchors", "AnchorGrid"]


def _centered(widths, heights, cx, cy):
    half_w, half_h = 0.5 * (widths - 1), 0.5 * (heights - 1)
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)


def base_anchors(stride, size, ratios):
    """The anchors of one level at the cell ``(0, 0)``: a ``(len(ratios), 4)`` float64 array
    of corners ``(x1, y1, x2, y2)``, one row per aspect ratio ``h / w``, in order."""
    ratios = np.asarray(ratios, dtype=np.float64)
    side = float(stride)
    centre = 0.5 * (side - 1)
    widths = np.round(np.sqrt(side * side / ratios))
    heights = np.round(widths * ratios)
    scale = float(size) / side
    return _centered(widths * scale, heights * scale, centre, centre)


class AnchorGrid(nn.HybridBlock):
    """The anchors of one pyramid level for a feature map: ``(1, H * W * A, 4)`` corners in
    input pixels, ordered (row, column, anchor) like the RPN head's outputs.

    Parameters
    ----------
    stride : int
        Input pixels per feature cell.
    size : float
        Side of the square anchor (``base_size * scale`` in GluonCV's terms).
    ratios : sequence of float
        Aspect ratios ``h / w``; ``A = len(ratios)`` anchors per cell.
    """

    def __init__(self, stride, size, ratios, **kwargs):
        super().__init__(**kwargs)
        self._stride = float(stride)
        self._base = [tuple(float(v) for v in row) for row in base_anchors(stride, size, ratios)]

    @property
    def num_anchors(self):
        """Anchors per feature cell."""
        return len(self._base)

    def hybrid_forward(self, F, feat):
        # Cell offsets in the feature map's dtype: x varies along the width, y along the height.
        xs = F.contrib.arange_like(feat, axis=3, step=self._stride).reshape((1, -1))
        ys = F.contrib.arange_like(feat, axis=2, step=self._stride).reshape((-1, 1))
        gx = F.broadcast_add(xs, F.zeros_like(ys))                      # (H, W)
        gy = F.broadcast_add(ys, F.zeros_like(xs))
        coords = []
        for x1, y1, x2, y2 in self._base:
            coords += [gx + x1, gy + y1, gx + x2, gy + y2]
        return F.stack(*coords, axis=-1).reshape((1, -1, 4))
