"""Check a model's accuracy on a labelled data set: what ``scripts/gluon/verify.py`` runs.

The published weights (or a checkpoint), the model's published evaluation preprocessing
(:func:`~resnest.gluon.data.eval_transform`), the inference form asked for
(:func:`~resnest.gluon.inference.optimize`, with any backend: MXNet, onnxruntime, OpenVINO)
and the one evaluator
(:func:`resnest.gluon.evaluate.evaluate`), over one process, several GPUs (each batch split
over them, as the authors' script does) or Horovod ranks (counts summed).
"""
import os
from dataclasses import dataclass
from typing import Optional

from ..classes import check_class_names
from ..utils.errors import UserError

__all__ = ["VerifyConfig", "verify"]


@dataclass
class VerifyConfig:
    """Everything ``verify.py`` asks for; see its ``--help`` for meanings."""

    model: str
    data: str                              # a .rec (its .idx beside it) or a class-folder tree
    weights: Optional[str] = None          # None: the published weights
    crop_size: Optional[int] = None        # None: the checkpoint's or the published settings
    crop_ratio: Optional[float] = None
    batch_size: int = 32                   # per device
    dtype: str = "float32"
    num_gpus: int = 0
    num_workers: int = 4
    calib_batches: int = 4
    calib_mode: Optional[str] = None       # None: the backend's default (see optimize)
    progress: bool = True
    backend: str = "mxnet"                 # mxnet, onnxruntime or openvino


def _data_class_names(loader):
    samples = loader.samples
    if hasattr(samples, "class_names"):
        return samples.class_names
    from ..data.listing import read_classes
    return read_classes(samples.path[:-4] + ".classes.txt")


def verify(cfg, dist=None):
    """Evaluate ``cfg.model`` on ``cfg.data``; returns the summary dict (the same on every
    rank): top-1/top-5 in %, image counts, model-only and end-to-end images per second, and
    the settings used."""
    from ..data import eval_loader, eval_transform
    from ..evaluate import evaluate
    from ..utils.distributed import setup_distributed
    from .load import load_model
    from .calibration import spread_batches
    from .optimize import optimize
    dist = dist or setup_distributed(num_gpus=cfg.num_gpus)
    if not os.path.exists(cfg.data):
        raise UserError(f"{cfg.data} does not exist; give a .rec file or a class-folder tree.")
    from .load import checkpoint_eval_crop
    size, ratio = checkpoint_eval_crop(cfg.weights) if cfg.weights else (None, None)
    transform = eval_transform(cfg.model, size if cfg.crop_size is None else cfg.crop_size,
                               ratio if cfg.crop_ratio is None else cfg.crop_ratio)
    settings = transform.settings
    from ..utils.memory import check_fits_in_memory
    check_fits_in_memory(cfg.batch_size, settings.crop_size, dist.ctx, training=False,
                         flag="--crop-size")
    per_step = cfg.batch_size * len(dist.contexts)
    loader = eval_loader(cfg.data, per_step, transform, dist.rank, dist.size, cfg.num_workers)
    loaded = load_model(cfg.model, cfg.weights, ctx=dist.contexts)
    if loader.samples.classes > loaded.classes:
        raise UserError(f"the data has {loader.samples.classes} classes but the model predicts "
                        f"{loaded.classes}; pass the weights trained on this data with --resume.")
    if cfg.weights:
        check_class_names(loaded.class_names, _data_class_names(loader), cfg.weights, cfg.data)
    calib = spread_batches(loader, cfg.calib_batches) if cfg.dtype == "int8" else None
    net = optimize(loaded.net, cfg.dtype, backend=cfg.backend, ctx=dist.ctx, calib_data=calib,
                   input_size=settings.crop_size, batch_size=cfg.batch_size,
                   calib_mode=cfg.calib_mode)
    progress = None
    if dist.is_root and cfg.progress:
        from tqdm import tqdm
        bar = tqdm(total=len(loader), unit="batch", desc=f"verify {cfg.model}", leave=False)
        progress = lambda done, images: bar.update(1)          # noqa: E731
    result = evaluate(net, loader, dist, progress=progress)
    if progress is not None:
        bar.close()
    summary = result.as_dict()
    summary.update(model=cfg.model, weights=loaded.weights, crop_size=settings.crop_size,
                   crop_ratio=round(settings.crop_ratio, 6), preprocessing=settings.method,
                   dtype=cfg.dtype, backend=cfg.backend, batch_size=cfg.batch_size,
                   ranks=dist.size,
                   devices=len(dist.contexts),
                   threads_per_rank=int(os.environ.get("OMP_NUM_THREADS", "0")))
    return summary
