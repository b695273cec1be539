"""Score a detector on a COCO-format folder: what ``scripts/gluon/evaluate_detection.py`` runs.

COCO mAP by pycocotools' own ``COCOeval`` (:mod:`resnest.gluon.evaluate.detection`), every
image of the annotation file run once over any number of Horovod ranks, each image resized as
the weights are evaluated (:func:`~.load_detection.detector_transform`). The annotation file is
checked before anything runs (:class:`~resnest.gluon.data.coco.CocoSamples`: a box outside its
image, an unknown category id, a missing image file is one sentence); images without
annotations are kept (their detections are false positives, as in COCO's own val2017), a file
without any annotation is refused (its mAP is undefined). The model's classes must be the
file's categories, by name.
"""
import os
import time
from dataclasses import dataclass
from typing import Optional

from ..data.coco import CocoSamples
from ..data.det_samples import DetectionSamples
from ..data.det_transforms import DetectionEvalSample
from ..data.loaders import eval_loader
from ..evaluate.detection import SCORE_THRESH, evaluate_detection
from ..utils.config import FRACTION, NON_NEGATIVE, POSITIVE, check_fields, option
from ..utils.cpu import cpu_model
from ..utils.errors import UserError
from .config import InferenceConfig
from .detect import ENGINE, check_detector_engine
from .load_detection import detector_transform, load_detector

__all__ = ["DetectionVerifyConfig", "check_images", "verify_detection"]


@dataclass
class DetectionVerifyConfig(InferenceConfig):
    """Everything ``evaluate_detection.py`` asks for; see its ``--help``."""

    model: str = option(None, "registered detector, e.g. faster_rcnn_fpn_resnest50_coco",
                        required=True)
    annotations: str = option(None, "COCO-format JSON of the images (e.g. "
                              "instances_val2017.json)", metavar="FILE", required=True)
    images: str = option(None, "the folder its file_name entries are in", metavar="DIR",
                         required=True)
    short: Optional[int] = option(None, "short side of the input (default: the weights' "
                                  "evaluation size)", check=POSITIVE)
    max_size: Optional[int] = option(None, "longest side (default: the weights')",
                                     check=POSITIVE)
    score_thresh: float = option(SCORE_THRESH, "detections scoring below are dropped "
                                 "(GluonCV's COCO metric: 0.05)", check=FRACTION)
    batch_size: int = option(1, cli=False)
    num_workers: int = option(2, "decoding processes per rank (0: decode in this process)",
                              flags=("-j", "--num-workers"), check=NON_NEGATIVE)

    def check(self):
        check_fields(self)
        check_detector_engine(self)


def _samples(cfg):
    coco = CocoSamples(cfg.annotations, cfg.images)
    if not coco.coco.dataset["annotations"]:
        raise UserError(f"{cfg.annotations} has no annotations, so there is nothing to score "
                        "detections against; give the file with the images' boxes.")
    return coco, DetectionSamples(coco, training=False)


def _header_problem(coco, index):
    """Why image ``index`` cannot be scored (unreadable, or not the size its record gives, upright
    by EXIF as the decoder turns it), from its header alone; None when it is fine."""
    from PIL import Image, UnidentifiedImageError
    path, record = coco.path(index), coco.coco.imgs[coco.image_ids[index]]
    try:
        with Image.open(path) as img:
            width, height = img.size
            if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):     # EXIF: turned by 90 degrees
                width, height = height, width
    except (OSError, UnidentifiedImageError) as err:
        return f"cannot read image {path}: {err}; give readable images."
    if (height, width) != (record["height"], record["width"]):
        return (f"image {path} is {width}x{height} but {coco.annotation_file} says "
                f"{record['width']}x{record['height']}; give the images these annotations "
                "were made on.")
    return None


def check_images(coco, dist):
    """Every image readable and of its record's size, each rank checking a share; the first
    problem stops every rank with the same sentence (no rank is left waiting for another)."""
    mine = next((p for p in (_header_problem(coco, i)
                             for i in range(dist.rank, len(coco), dist.size)) if p), None)
    problem = next((p for p in dist.gather_objects(mine, "det_eval.images") if p), None)
    if problem:
        raise UserError(problem)


def verify_detection(cfg, dist, log=None):
    """COCO mAP of ``cfg``'s detector on ``cfg.annotations``, over the ranks of ``dist``.

    Returns
    -------
    dict
        The same on every rank: the figures (``bbox``, and ``segm`` for Mask R-CNN, in %,
        with ``per_class``), the image and detection counts, images per rank, the settings.
    """
    cfg.check()
    coco, samples = _samples(cfg)
    if log and dist.is_root:
        log(coco.report())
    check_images(coco, dist)
    loaded = load_detector(cfg.model, cfg.weights, ctx=dist.ctx)
    transform = detector_transform(loaded, cfg.short, cfg.max_size)
    loaded.net.hybridize(static_alloc=True)
    loader = eval_loader(samples, 1, DetectionEvalSample(transform), dist.rank, dist.size,
                         cfg.num_workers, dist.ctx)
    start = time.perf_counter()
    result = evaluate_detection(loaded.net, loader, samples, loaded.class_names, dist,
                                cfg.score_thresh)
    seconds = time.perf_counter() - start
    s = transform.settings
    return {"model": cfg.model, "weights": os.path.abspath(loaded.weights),
            "annotations": os.path.abspath(cfg.annotations), "backend": ENGINE[0],
            "engine": ENGINE[1], "dtype": "float32", "short": s.short, "max_size": s.max_size,
            "score_thresh": cfg.score_thresh, "ranks": dist.size, "cpu": cpu_model(),
            "images_without_annotations": len(coco.empty_image_ids),
            "seconds": round(seconds, 3), **result.as_dict()}
