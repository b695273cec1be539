"""Score a segmentation model on image / mask pairs: what ``scripts/gluon/evaluate_segmentation.py``
runs.

The published weights (or a checkpoint), the weights' protocol (single scale: each image whole
at its own size, GluonCV's test.py; or ``--multi-scale``), any engine through
:func:`~resnest.gluon.inference.optimize`, and the one evaluator
(:func:`resnest.gluon.evaluate.segmentation.evaluate_segmentation`: exact pixel counts, label
0 ignored, every image counted once over any number of Horovod ranks). The data's classes
must be the model's (names from the data's ``classes.txt``, else the model's own list).
"""
import os
from dataclasses import dataclass
from typing import Optional

from ..classes import check_class_names
from ..data.loaders import eval_loader
from ..data.seg_transforms import SegmentationEvalTransform
from ..data.segmentation import SegmentationSamples
from ..evaluate.segmentation import evaluate_segmentation
from ..utils.config import POSITIVE, check_fields, option
from ..utils.errors import UserError
from .calibration import spread_batches
from .config import InferenceConfig, SegmentInput
from .load import load_segmentation_model, segmentation_settings
from .segment import scorer, segmentation_engine

__all__ = ["SegmentationVerifyConfig", "verify_segmentation"]


@dataclass
class SegmentationVerifyConfig(InferenceConfig, SegmentInput):
    """Everything ``evaluate_segmentation.py`` asks for; see its ``--help`` for meanings."""

    data_dir: str = option(None, "the data: ADE20K layout (images/, annotations/ with "
                           "training/ and validation/) or an images/ + masks/ folder",
                           metavar="DIR", required=True)
    split: Optional[str] = option("val", "ADE20K layout: train or val (ignored for images/ "
                                  "+ masks/)", choices=("train", "val"))
    classes: Optional[str] = option(None, "a published class list (ade20k); default: the "
                                    "data's classes.txt, else the model's classes")
    batch_size: int = option(1, "images per batch (only images of one size can share one; "
                             "ADE20K's vary)", check=POSITIVE)
    progress: bool = option(True, "no progress bar", flags=("--no-progress",))

    def check(self):
        check_fields(self)
        if self.multi_scale and self.batch_size != 1:
            raise UserError("--multi-scale scores one image at a time; use --batch-size 1.")


def _samples(cfg, loaded):
    root = cfg.data_dir
    if not os.path.isdir(root):
        raise UserError(f"--data-dir {root} is not a folder; give the data set's folder.")
    pairs = os.path.isdir(os.path.join(root, "masks"))
    fallback = loaded.class_names or loaded.classes
    samples = SegmentationSamples(root, None if pairs else cfg.split, cfg.classes, fallback)
    if samples.num_classes != loaded.classes:
        raise UserError(f"{samples.root} has {samples.num_classes} classes but the model "
                        f"predicts {loaded.classes}; evaluate the weights trained for this "
                        "data (--resume).")
    check_class_names(loaded.class_names, samples.classes, loaded.weights, samples.root)
    return samples


def verify_segmentation(cfg, dist):
    """Evaluate ``cfg.model`` on ``cfg.data_dir``; returns the summary dict (the same on every
    rank): pixAcc, mIoU, per-class IoU, the exact counts, speeds and the settings used."""
    cfg.check()
    loaded = load_segmentation_model(cfg.model, cfg.weights, ctx=dist.ctx)
    settings = segmentation_settings(loaded, cfg.base_size, cfg.crop_size, cfg.multi_scale)
    samples = _samples(cfg, loaded)
    loader = eval_loader(samples, cfg.batch_size,
                         SegmentationEvalTransform(None, settings.mean, settings.std),
                         dist.rank, dist.size, cfg.num_workers, dist.ctx)
    calib = [b[0] for b in spread_batches(loader, cfg.calib_batches)] \
        if cfg.dtype == "int8" else None
    net = segmentation_engine(loaded.net, cfg, settings, calib)
    progress = bar = None
    if dist.is_root and cfg.progress:
        from tqdm import tqdm
        bar = tqdm(total=len(loader), unit="batch", desc=f"evaluate {cfg.model}", leave=False)
        progress = lambda done, images: bar.update(1)          # noqa: E731
    try:
        result = evaluate_segmentation(net, loader, loaded.classes, dist,
                                       scores=scorer(settings, cfg.multi_scale),
                                       progress=progress, class_names=loaded.class_names)
    finally:
        if bar is not None:
            bar.close()
        loader.close()
    result.settings = dict(
        model=cfg.model, weights=loaded.weights, data=samples.root, layout=samples.layout,
        split=cfg.split if samples.layout == "ade20k" else None,
        protocol="multi-scale" if cfg.multi_scale else "single-scale",
        base_size=settings.base_size, crop_size=settings.crop_size, dtype=cfg.dtype,
        backend=net.chosen_backend, engine=net.backend_reason, batch_size=cfg.batch_size,
        ranks=dist.size, threads_per_rank=int(os.environ.get("OMP_NUM_THREADS", "0")))
    return result.as_dict()
