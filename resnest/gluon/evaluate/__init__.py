"""The evaluators: exact counts summed over every rank, never averages of per-rank figures.

:mod:`.classification` (top-1 / top-5 and loss: training, ``verify.py``);
:mod:`.segmentation` (pixel accuracy and mIoU: segmentation training,
``evaluate_segmentation.py``).
"""
from .classification import EvalResult, batch_counts, evaluate
from .segmentation import SegmentationResult, evaluate_segmentation, pixel_counts

__all__ = ["EvalResult", "batch_counts", "evaluate", "SegmentationResult",
           "evaluate_segmentation", "pixel_counts"]
