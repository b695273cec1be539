"""Multi-level ROIAlign: each region is pooled from the pyramid level its size selects
(FPN paper eq. 1, GluonCV's ``_pyramid_roi_feats``).

Level ``floor(4 + log2(sqrt(w * h) / 224 + 1e-6))`` with ``w = x2 - x1 + 1``, clipped to
``min_level .. max_level`` (P2 .. P5; P6 only feeds the RPN). Every level pools every region
and the ones that do not belong to it are zeroed before the levels are summed. GluonCV instead
marks foreign regions with batch index -1, which MXNet 1.9's CPU ROIAlign answers with
uninitialised memory (only the GPU kernel writes zeros), so its CPU results then depend on
whatever that memory held; zeroing after pooling gives the GPU's values on every device.
"""

__all__ = ["roi_levels", "pyramid_roi_align"]


def roi_levels(F, rois, min_level=2, max_level=5, canonical_size=224.0, canonical_level=4):
    """The pyramid level of each region of ``rois`` ``(R, 5)`` (batch index, corners): ``(R,)``."""
    _, x1, y1, x2, y2 = F.split(rois, axis=-1, num_outputs=5)
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    level = F.floor(canonical_level + F.log2(F.sqrt(area) / canonical_size + 1e-6))
    return F.clip(level, min_level, max_level).reshape((-1,))


def pyramid_roi_align(F, levels, rois, roi_size, strides, min_level=2, sample_ratio=2,
                      canonical_size=224.0):
    """Pool ``rois`` ``(R, 5)`` from ``levels`` (P{min_level}, ... in order, one stride each):
    ``(R, C, roi_size[0], roi_size[1])``."""
    assigned = roi_levels(F, rois, min_level, min_level + len(levels) - 1, canonical_size)
    pooled = []
    for i, (feat, stride) in enumerate(zip(levels, strides)):
        feat_i = F.contrib.ROIAlign(feat, rois, roi_size, 1.0 / stride, sample_ratio=sample_ratio)
        mine = F.broadcast_like((assigned == min_level + i).reshape((-1, 1, 1, 1)), feat_i)
        pooled.append(F.where(mine, feat_i, F.zeros_like(feat_i)))
    return F.add_n(*pooled)
