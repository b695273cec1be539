"""The evaluators: exact counts summed over every rank, never averages of per-rank figures.

:mod:`.classification` (top-1 / top-5 and loss: training, ``verify.py``);
:mod:`.segmentation` (pixel accuracy and mIoU: segmentation training,
``evaluate_segmentation.py``); :mod:`.detection` (COCO mAP by pycocotools' ``COCOeval``:
detection training, ``evaluate_detection.py``; the rows of every rank gathered, each image
once).
"""
from .classification import EvalResult, batch_counts, evaluate
from .segmentation import SegmentationResult, evaluate_segmentation, pixel_counts

__all__ = ["EvalResult", "batch_counts", "evaluate", "SegmentationResult",
           "evaluate_segmentation", "pixel_counts"]
