"""The detection evaluator: COCO mAP by pycocotools' own ``COCOeval`` (boxes, and masks for
Mask R-CNN), every image of the annotation file counted exactly once over any number of ranks.

Each rank detects its share of the images (the evaluation loader's plan: contiguous shares,
the padding batches, ``valid`` 0, are not run) and turns every image's detections into COCO
result rows: boxes on the original image (:func:`~resnest.gluon.data.detection.
image_detections`) as ``[x, y, x2 - x + 1, y2 - y + 1]`` (GluonCV's convention: its published
models were trained on ``x2 = x + w - 1``, and its COCO metric converts back so), the class
mapped to the file's category id by name, the mask as RLE. The rows and the positions each
rank ran are gathered; rank 0 checks that every image ran exactly once, scores the rows with
``COCOeval`` over all image ids of the file (an image without detections counts its
annotations as misses, detections on an image without annotations are false positives) and
sends the figures to every rank.

The model's classes must be the file's categories (by name, any order): a class the file does
not have, or a category the model cannot predict, would silently change the mAP, so either is
refused in one sentence.
"""
import contextlib
import io
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..data.detection import image_detections
from ..utils.errors import UserError

__all__ = ["DetectionResult", "category_map", "result_rows", "coco_metrics",
           "evaluate_detection", "SCORE_THRESH"]

# GluonCV's COCODetectionMetric drops detections scoring below 0.05.
SCORE_THRESH = 0.05
_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


@dataclass
class DetectionResult:
    """The figures of one evaluation (percentages; None where the file has no annotation of
    that kind, e.g. no small objects), the same on every rank."""

    bbox: dict
    segm: Optional[dict] = None
    images: int = 0
    detections: int = 0
    seconds: float = 0.0
    per_rank_images: list = field(default_factory=list)

    def metrics(self):
        """The training log's fields."""
        out = {"box_ap": self.bbox["AP"], "box_ap50": self.bbox["AP50"],
               "box_ap75": self.bbox["AP75"], "val_samples": self.images}
        if self.segm is not None:
            out["mask_ap"] = self.segm["AP"]
        return out

    def as_dict(self):
        """JSON-ready summary."""
        out = {"images": self.images, "detections": self.detections, "bbox": self.bbox,
               "seconds": round(self.seconds, 3), "per_rank_images": self.per_rank_images}
        if self.segm is not None:
            out["segm"] = self.segm
        return out


def category_map(class_names, coco, what="the model"):
    """``[category id of class 0, of class 1, ...]``: the model's classes found among the
    file's categories by name (see the module doc for what is refused)."""
    by_name = {coco.coco.cats[c]["name"]: c for c in coco.cat_ids}
    unknown = [n for n in class_names if n not in by_name]
    unused = sorted(set(by_name) - set(class_names))
    if unknown or unused:
        detail = (f"{len(unknown)} of its classes are not categories of the file (e.g. "
                  f"{unknown[0]!r})" if unknown else
                  f"the file's categories {', '.join(map(repr, unused[:3]))} are not among its "
                  "classes")
        raise UserError(f"{what} does not detect the categories of {coco.annotation_file}: "
                        f"{detail}; evaluate a model trained on these categories.")
    return [by_name[n] for n in class_names]


def result_rows(image_id, dets, cat_ids):
    """COCO result rows of one image's :class:`~resnest.gluon.data.detection.ImageDetections`
    (``segmentation`` RLE when it has masks)."""
    rows = []
    for k, (label, score, box) in enumerate(zip(dets.labels, dets.scores, dets.boxes)):
        x1, y1, x2, y2 = (float(v) for v in box)
        row = {"image_id": int(image_id), "category_id": int(cat_ids[int(label)]),
               "bbox": [x1, y1, x2 - x1 + 1, y2 - y1 + 1], "score": float(score)}
        if dets.masks is not None:
            from pycocotools import mask as mask_util
            rle = mask_util.encode(np.asfortranarray(dets.masks[k]))
            row["segmentation"] = {"size": [int(v) for v in rle["size"]],
                                   "counts": rle["counts"].decode("ascii")}
        rows.append(row)
    return rows


def _percent(value):
    return None if value < 0 else round(100.0 * float(value), 4)


def coco_metrics(coco, rows, iou_type="bbox", names=None):
    """``{'AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'per_class'}`` (%) of result ``rows``
    against ``coco`` (a :class:`~resnest.gluon.data.coco.CocoSamples`) by ``COCOeval`` over
    every image of the file; ``names`` maps category ids to the names ``per_class`` uses."""
    from pycocotools.cocoeval import COCOeval
    names = names or {c: coco.coco.cats[c]["name"] for c in coco.cat_ids}
    has_gt = bool(coco.coco.dataset["annotations"])
    if not rows:                           # loadRes cannot take an empty list
        zero = 0.0 if has_gt else None
        return dict({k: zero for k in _KEYS}, per_class={names[c]: zero for c in coco.cat_ids})
    with contextlib.redirect_stdout(io.StringIO()):
        # loadRes adds fields to the rows it gets: give it copies.
        evaluation = COCOeval(coco.coco, coco.coco.loadRes([dict(r) for r in rows]), iou_type)
        evaluation.params.imgIds = list(coco.image_ids)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    out = {k: _percent(v) for k, v in zip(_KEYS, evaluation.stats[:6])}
    precision = evaluation.eval["precision"]          # (IoU, recall, class, area, max dets)
    top = evaluation.params.maxDets.index(100)
    per_class = {}
    for k, cat in enumerate(evaluation.params.catIds):
        p = precision[:, :, k, 0, top]
        per_class[names[cat]] = _percent(p[p > -1].mean()) if (p > -1).any() else None
    out["per_class"] = per_class
    return out


def _detect(net, data):
    outputs = net(data)
    return [o.astype("float32").asnumpy() for o in outputs]


def _run_share(net, loader, samples, cat_ids, score_thresh, progress):
    """This rank's result rows ``(boxes, masks or None)`` and the positions it ran."""
    rows, mask_rows, done = [], None, []
    for i, (data, meta, valid) in enumerate(loader):
        meta = meta.asnumpy() if hasattr(meta, "asnumpy") else np.asarray(meta)
        if int(valid) > 0:
            outputs = _detect(net, data)
            for b in range(int(valid)):
                position, scale, height, width = meta[b]
                record = samples.coco.coco.imgs[samples.image_id(int(position))]
                dets = image_detections([o[b] for o in outputs], scale,
                                        (int(height), int(width)),
                                        (record["height"], record["width"]), score_thresh)
                image_rows = result_rows(samples.image_id(int(position)), dets, cat_ids)
                if dets.masks is not None:
                    mask_rows = (mask_rows or []) + image_rows
                rows += [{k: v for k, v in r.items() if k != "segmentation"}
                         for r in image_rows]
                done.append(int(position))
        if progress is not None:
            progress(i + 1, len(done))
    return rows, mask_rows, done


def evaluate_detection(net, loader, samples, class_names, dist=None,
                       score_thresh=SCORE_THRESH, progress=None):
    """COCO mAP of detector ``net`` on ``samples`` (evaluation
    :class:`~resnest.gluon.data.det_samples.DetectionSamples`) through ``loader`` (an
    :func:`~resnest.gluon.data.loaders.eval_loader` with a :class:`~resnest.gluon.data.
    det_transforms.DetectionEvalSample` transform), over every rank of ``dist``.

    ``class_names`` are the model's classes (mapped onto the file's categories by
    :func:`category_map`); ``progress(batches, images)`` is called after every batch.

    Returns
    -------
    DetectionResult
        ``segm`` is filled when the network returns masks.
    """
    start = time.perf_counter()
    cat_ids = category_map(class_names, samples.coco)
    share = _run_share(net, loader, samples, cat_ids, score_thresh, progress)
    gathered = dist.gather_objects(share, "det_eval.rows") if dist is not None else [share]
    result = None
    if dist is None or dist.is_root:
        done = sorted(p for _, _, positions in gathered for p in positions)
        if done != list(range(len(samples))):
            raise RuntimeError(f"the evaluation ran {len(done)} images for {len(samples)}, "
                               "not each exactly once")
        rows = [r for part, _, _ in gathered for r in part]
        masks = [r for _, part, _ in gathered if part for r in part]
        segm = coco_metrics(samples.coco, masks, "segm") if any(
            part is not None for _, part, _ in gathered) else None
        result = DetectionResult(coco_metrics(samples.coco, rows, "bbox"), segm, len(done),
                                 len(rows), per_rank_images=[len(p) for _, _, p in gathered])
    if dist is not None:
        result = dist.broadcast_object(result, "det_eval.result")
    result.seconds = time.perf_counter() - start
    return result
