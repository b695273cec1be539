"""The segmentation evaluator: exact pixel counts per class, summed over every rank.

The counts are GluonCV 0.10.5's (``gluoncv/utils/metrics/segmentation.py``,
``batch_pix_accuracy`` and ``batch_intersection_union``): a target pixel of -1 (PNG value 0 of
an ADE20K mask, "unlabelled") is left out of everything, prediction included; for the other
pixels ``correct`` counts predicted == target, ``labeled`` counts them all, and per class
``intersection`` counts the pixels where both name it, ``union`` those where either does.
``pixAcc = correct / labeled`` and ``mIoU`` is the mean of ``intersection / union`` over ALL
classes, as GluonCV's ``SegmentationMetric.get`` does: a class that neither the masks nor the
predictions contain counts 0 (so on a small set the mean is over classes that were never
there too; :attr:`SegmentationResult.absent` names them, ``mIoU_present`` leaves them out).

Every batch carries ``valid`` (the number of real images at its start; see
:func:`resnest.gluon.data.loaders.eval_loader`), so each image is counted exactly once over any
number of ranks; the counts are summed over the ranks, never their scores averaged. A target
value outside ``-1..classes-1`` is refused in one sentence instead of being dropped silently
(GluonCV's histogram drops it from the union but counts it as labelled).
"""
import time
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from ..utils.errors import UserError

__all__ = ["SegmentationResult", "pixel_counts", "evaluate_segmentation"]

# GluonCV's guard against 0 / 0 (np.spacing(1)), kept so the scores are GluonCV's to the bit.
_EPS = np.spacing(1)


@dataclass
class SegmentationResult:
    """Counts of one evaluation, summed over all ranks; scores are fractions, the dicts for
    people (:meth:`metrics`, :meth:`as_dict`) give percentages."""

    classes: int
    correct: int = 0
    labeled: int = 0
    intersection: np.ndarray = None          # (classes,) int64
    union: np.ndarray = None
    images: int = 0
    class_names: Optional[List[str]] = None
    model_images_per_s: float = 0.0          # all ranks together
    end_to_end_images_per_s: float = 0.0
    settings: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("intersection", "union"):
            value = getattr(self, name)
            setattr(self, name, np.zeros(self.classes, np.int64) if value is None
                    else np.asarray(value, np.int64))

    @property
    def pixAcc(self):                        # noqa: N802 (GluonCV's name)
        return float(1.0 * self.correct / (_EPS + self.labeled))

    @property
    def iou(self):
        """Per-class IoU (float64, 0 where the union is empty, as GluonCV counts it)."""
        return 1.0 * self.intersection / (_EPS + self.union)

    @property
    def mIoU(self):                          # noqa: N802
        return float(self.iou.mean())

    @property
    def absent(self):
        """Classes in neither the masks nor the predictions (their IoU is 0 in the mean)."""
        return [int(c) for c in np.nonzero(self.union == 0)[0]]

    @property
    def mIoU_present(self):                  # noqa: N802
        """Mean IoU over the classes that the masks or the predictions contain."""
        present = self.union > 0
        return float(self.iou[present].mean()) if present.any() else 0.0

    def metrics(self):
        """The training log's fields: ``pixAcc``, ``mIoU`` in %, ``val_samples``."""
        return {"pixAcc": 100.0 * self.pixAcc, "mIoU": 100.0 * self.mIoU,
                "val_samples": self.images}

    def as_dict(self):
        """JSON-ready summary: scores in %, the exact counts, per-class IoU by name."""
        names = self.class_names or [str(c) for c in range(self.classes)]
        return dict(pixAcc=round(100 * self.pixAcc, 4), mIoU=round(100 * self.mIoU, 4),
                    mIoU_present=round(100 * self.mIoU_present, 4), images=self.images,
                    pixels_correct=int(self.correct), pixels_labeled=int(self.labeled),
                    classes=self.classes,
                    absent_classes=[names[c] for c in self.absent],
                    per_class=[{"class": names[c], "iou": round(100 * float(self.iou[c]), 4),
                                "intersection": int(self.intersection[c]),
                                "union": int(self.union[c])} for c in range(self.classes)],
                    model_images_per_s=round(self.model_images_per_s, 3),
                    end_to_end_images_per_s=round(self.end_to_end_images_per_s, 3),
                    **self.settings)


def pixel_counts(pred, target, classes):
    """``(correct, labeled, intersection, union)`` of predicted class indices ``pred`` against
    ``target`` (same shape; -1 = unlabelled), ``intersection`` and ``union`` per class.

    Raises
    ------
    UserError
        ``pred`` and ``target`` differ in shape, or a target is outside ``-1..classes-1``.
    """
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise UserError(f"a prediction of shape {pred.shape} cannot be scored against a mask "
                        f"of shape {target.shape}; every pixel of a mask needs a prediction.")
    target = target.astype(np.int64).ravel()
    pred = pred.astype(np.int64).ravel()
    if target.size and (target.min() < -1 or target.max() >= classes):
        bad = int(target.max() if target.max() >= classes else target.min())
        raise UserError(f"a mask holds the label {bad} (PNG value {bad + 1}), outside the "
                        f"{classes} classes of the model (0 = unlabelled, 1..{classes}); "
                        "evaluate with the model trained for these classes.")
    labeled = target >= 0
    pred, target = pred[labeled], target[labeled]
    hit = pred == target
    if pred.size and (pred.min() < 0 or pred.max() >= classes):
        raise UserError(f"the model predicts class {int(pred.max())}, beyond the {classes} "
                        "classes it is scored on; evaluate it with its own class count.")
    inter = np.bincount(target[hit], minlength=classes)
    area_pred = np.bincount(pred, minlength=classes)
    area_label = np.bincount(target, minlength=classes)
    return int(hit.sum()), int(target.size), inter, area_pred + area_label - inter


def _labels(scores):
    """Predicted class per pixel (numpy int64) of scores (N, classes, H, W); argmax on the
    scores' device, so only the labels cross to the host."""
    import mxnet as mx
    if isinstance(scores, mx.nd.NDArray):
        return scores.argmax(axis=1).asnumpy().astype(np.int64)
    return np.asarray(scores).argmax(axis=1).astype(np.int64)


def evaluate_segmentation(net, loader, classes, dist=None, scores=None, progress=None,
                          class_names=None):
    """Run ``net`` over ``loader`` and count pixels (see the module doc).

    Parameters
    ----------
    net : callable
        Normalised float32 images (N, 3, H, W) -> ``(main, ...)`` or main scores.
    loader : iterable
        ``(images, targets, valid)`` batches: targets (N, H, W) with -1 for unlabelled pixels;
        only the first ``valid`` images count (the padding is run too, so every batch has
        the loader's shape).
    classes : int
        The model's classes.
    dist : resnest.gluon.utils.distributed.Dist, optional
        Sums the counts (and speeds) over all ranks; None for one process.
    scores : callable, optional
        ``scores(net, images) -> (N, classes, H, W)``: the protocol (default
        :func:`~resnest.gluon.models.segmentation.evaluation.single_scale`).
    progress : callable, optional
        ``progress(batches_done, images_done)`` after every batch.

    Returns
    -------
    SegmentationResult
        The same on every rank.
    """
    from ..models.segmentation.evaluation import single_scale
    scores = scores or single_scale
    correct = labeled = images = 0
    inter, union = np.zeros(classes, np.int64), np.zeros(classes, np.int64)
    model_seconds, start, error = 0.0, time.perf_counter(), None
    try:
        for i, (data, target, valid) in enumerate(loader):
            valid = int(valid)
            if valid > 0:
                tick = time.perf_counter()
                pred = _labels(scores(net, data))[:valid]     # the whole batch: one shape
                model_seconds += time.perf_counter() - tick
                target = target.asnumpy() if hasattr(target, "asnumpy") else np.asarray(target)
                c, n, a, b = pixel_counts(pred, target[:valid], classes)
                correct, labeled, images = correct + c, labeled + n, images + valid
                inter, union = inter + a, union + b
            if progress is not None:
                progress(i + 1, images)
    except UserError as err:                   # a bad pair: every rank stops, none waits
        error = err
    if dist is not None and dist.size > 1:
        bad = dist.failed_ranks(error is None, "seg_eval.read")
        if bad:
            raise error or UserError(f"rank(s) {', '.join(map(str, bad))} could not score "
                                     "its share (named in its message); fix the data and "
                                     "evaluate again.")
    elif error is not None:
        raise error
    total_seconds = time.perf_counter() - start
    local = np.concatenate([[correct, labeled, images,
                             images / model_seconds if model_seconds else 0.0,
                             images / total_seconds if total_seconds else 0.0], inter, union])
    if dist is not None:
        local = dist.allreduce_sum(local, name="seg_eval_counts")
    counts = np.rint(local[:3]).astype(np.int64)
    return SegmentationResult(classes, int(counts[0]), int(counts[1]),
                              np.rint(local[5:5 + classes]).astype(np.int64),
                              np.rint(local[5 + classes:]).astype(np.int64), int(counts[2]),
                              class_names, float(local[3]), float(local[4]))
