"""Check a model's accuracy on a labelled data set: what ``scripts/gluon/verify.py`` runs.

The published weights (or a checkpoint), the evaluation preprocessing they belong to
(:func:`~.load.classification_transform`), the inference form asked for
(:func:`~resnest.gluon.inference.optimize`, with any backend: MXNet, onnxruntime, OpenVINO)
and the one evaluator (:func:`resnest.gluon.evaluate.evaluate`), over one process, several
GPUs (each batch split over them, as the authors' script does) or Horovod ranks (counts
summed).
"""
import os
from dataclasses import dataclass

from ..classes import check_class_names
from ..data.loaders import eval_loader
from ..evaluate import evaluate
from ..utils.config import NON_NEGATIVE, check_fields, option
from ..utils.errors import UserError
from ..utils.memory import check_fits_in_memory
from .calibration import spread_batches
from .config import ClassifyInput, InferenceConfig
from .load import classification_transform, load_model
from .optimize import optimize

__all__ = ["VerifyConfig", "verify"]


@dataclass
class VerifyConfig(InferenceConfig, ClassifyInput):
    """Everything ``verify.py`` asks for; see its ``--help`` for meanings."""

    rec_val: str = option("", "validation .rec (.idx beside it)", metavar="FILE")
    rec_dir: str = option("", "folder holding val.rec and val.idx", metavar="DIR")
    data_dir: str = option("", "class-folder tree of images", metavar="DIR")
    num_gpus: int = option(0, "0 = CPU; N splits each batch over GPUs 0..N-1 (one per rank "
                           "under horovodrun)", check=NON_NEGATIVE)
    progress: bool = option(True, "no progress bar", flags=("--no-progress",))

    def check(self):
        check_fields(self)
        if sum(bool(s) for s in (self.rec_val, self.rec_dir, self.data_dir)) != 1:
            raise UserError("give the data once: --rec-val FILE.rec, --rec-dir DIR (with "
                            "val.rec) or --data-dir DIR (class folders).")

    @property
    def data(self):
        """The .rec or class-folder tree to evaluate on."""
        return self.rec_val or self.data_dir or os.path.join(self.rec_dir, "val.rec")


def verify(cfg, dist):
    """Evaluate ``cfg.model`` on ``cfg.data``; returns the summary dict (the same on every
    rank): top-1/top-5 in %, image counts, model-only and end-to-end images per second, and
    the settings used."""
    if not os.path.exists(cfg.data):
        raise UserError(f"{cfg.data} does not exist; give a .rec file or a class-folder tree.")
    loaded = load_model(cfg.model, cfg.weights, ctx=dist.contexts)
    transform = classification_transform(loaded, cfg.crop_size, cfg.crop_ratio)
    settings = transform.settings
    check_fits_in_memory(cfg.batch_size, settings.crop_size, dist.ctx, training=False,
                         flag="--crop-size")
    per_step = cfg.batch_size * len(dist.contexts)
    loader = eval_loader(cfg.data, per_step, transform, dist.rank, dist.size, cfg.num_workers)
    if loader.samples.classes > loaded.classes:
        raise UserError(f"the data has {loader.samples.classes} classes but the model predicts "
                        f"{loaded.classes}; pass the weights trained on this data with --resume.")
    if cfg.weights:
        check_class_names(loaded.class_names, loader.samples.class_names, cfg.weights, cfg.data)
    calib = spread_batches(loader, cfg.calib_batches) if cfg.dtype == "int8" else None
    net = optimize(loaded.net, cfg.dtype, backend=cfg.backend, ctx=dist.ctx, calib_data=calib,
                   input_size=settings.crop_size, batch_size=cfg.batch_size,
                   calib_mode=cfg.calib_mode)
    progress = bar = None
    if dist.is_root and cfg.progress:
        from tqdm import tqdm
        bar = tqdm(total=len(loader), unit="batch", desc=f"verify {cfg.model}", leave=False)
        progress = lambda done, images: bar.update(1)          # noqa: E731
    try:
        result = evaluate(net, loader, dist, progress=progress)
    finally:
        if bar is not None:
            bar.close()
        loader.close()
    summary = result.as_dict()
    summary.update(model=cfg.model, weights=loaded.weights, crop_size=settings.crop_size,
                   crop_ratio=round(settings.crop_ratio, 6), preprocessing=settings.method,
                   dtype=cfg.dtype, backend=net.chosen_backend, engine=net.backend_reason,
                   batch_size=cfg.batch_size,
                   ranks=dist.size, devices=len(dist.contexts),
                   threads_per_rank=int(os.environ.get("OMP_NUM_THREADS", "0")))
    return summary
