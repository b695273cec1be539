"""Semantic segmentation as a training task: GluonCV 0.10.5's recipe (``scripts/segmentation/
train.py``: poly LR with power 0.9, the auxiliary FCN loss, random scale / crop / flip / blur,
SGD), image / mask data, three ways to start, and pixel accuracy / mIoU.

The runner (:mod:`.runner`) does everything else exactly as for classification: the run
folder, checkpoints (``segmentation-{model}-{epoch}.*``, the class names and the evaluation
sizes in the record), bit-exact resume, the monitor, Horovod.

Starts (one at most): ``--pretrained`` (the published segmentation model ``--model``, e.g.
``deeplab_resnest50_ade``; its class layers start afresh when the data's classes differ),
``--pretrained-backbone`` (the published ImageNet classifier of the model's backbone, heads
initialised), ``--pretrained-params FILE`` (a checkpoint of ours: a segmentation model, loaded
like ``--pretrained``, or a classifier, whose trunk starts the backbone).
"""
import hashlib
import os
import time
from dataclasses import dataclass
from typing import Optional

import mxnet as mx

from ..checkpoint import record_beside
from ..classes import published_classes
from ..data.loaders import PythonLoader, eval_loader, train_plan
from ..data.seg_transforms import SegmentationEvalTransform, SegmentationTrainTransform
from ..data.segmentation import SegmentationSamples
from ..data.sharding import val_shard
from ..evaluate.segmentation import evaluate_segmentation
from ..models import get_model
from ..models.segmentation import backbone_of
from ..pretrained import PRETRAINED, SegmentationEval
from ..store import get_model_file, load_weights, read_params
from ..utils.config import NON_NEGATIVE, POSITIVE, at_least, option
from ..utils.errors import UserError
from .config import OPTIMIZERS, RunConfig
from .losses import segmentation_loss
from .schedule import global_lr, poly_learning_rate

__all__ = ["NORM_LAYERS", "SegmentationTrainConfig", "SegmentationData", "SegmentationRecipe",
           "SegmentationTask", "norm_layer"]

NORM_LAYERS = ("bn", "syncbn")
_DEFAULTS = SegmentationEval()


@dataclass
class SegmentationTrainConfig(RunConfig):
    """A segmentation run: :class:`~.config.RunConfig` plus the data and GluonCV's recipe."""

    model: str = option("deeplab_resnest50", "registered segmentation model", group="recipe")
    batch_size: int = option(4, "per worker", check=POSITIVE, group="recipe")
    lr: float = option(0.005, "per worker; the global LR is lr x workers. The loss is the "
                       "mean over the labelled pixels of a worker's batch; GluonCV's trainer "
                       "divides that once more by the batch (its 0.01 at 2 images per GPU is "
                       "0.005 here)", check=POSITIVE, group="recipe")
    optimizer: str = option("sgd", "GluonCV's segmentation recipe uses SGD", choices=OPTIMIZERS,
                            group="recipe")
    data_dir: str = option("", "a data set in the ADE20K layout: images/ and annotations/, "
                           "each with training/ and validation/", metavar="DIR", group="data")
    train_dir: str = option("", "or: the training images/ + masks/ folder", metavar="DIR",
                            group="data")
    val_dir: str = option("", "and the validation images/ + masks/ folder", metavar="DIR",
                          group="data")
    classes: Optional[str] = option(None, "a published class list (ade20k); default: the "
                                    "data's classes.txt (ADE20K's own folder: ade20k)",
                                    group="data")
    base_size: int = option(_DEFAULTS.base_size, "random scale: the longer side is drawn "
                            "from [base/2, 2 x base]", check=at_least(32), group="data")
    crop_size: int = option(_DEFAULTS.crop_size, "training crop; also the validation crop",
                            check=at_least(32), group="data")
    aux: bool = option(False, "the auxiliary FCN head on layer3 and its loss (GluonCV's --aux)",
                       group="recipe")
    aux_weight: float = option(0.5, "weight of the auxiliary loss (GluonCV's default; its "
                               "loss applies it to the reported value only, its gradient "
                               "has weight 1)", check=NON_NEGATIVE, group="recipe")
    norm_layer: str = option(
        "bn", "syncbn: MXNet's SyncBatchNorm, which pools the statistics of the GPUs one "
        "process drives; each rank here drives one device, so (as on a CPU, where it computes "
        "what bn does) every rank normalises its own batch", choices=NORM_LAYERS,
        group="recipe")
    pretrained: bool = option(False, "start from the published weights of --model (e.g. "
                              "deeplab_resnest50_ade)", group="fine-tuning")
    pretrained_backbone: bool = option(False, "start the backbone from the published ImageNet "
                                       "weights of the model's classifier", group="fine-tuning")
    pretrained_params: str = option("", "start from this checkpoint of ours: a segmentation "
                                    "model, or a classifier whose trunk starts the backbone",
                                    metavar="FILE", group="fine-tuning")

    @property
    def starts_from_weights(self):
        return bool(self.pretrained or self.pretrained_params or self.pretrained_backbone)

    def check(self):
        super().check()
        if bool(self.data_dir) == bool(self.train_dir or self.val_dir):
            raise UserError("give the data once: --data-dir DIR (ADE20K layout) or --train-dir "
                            "and --val-dir (images/ + masks/ folders).")
        if not self.data_dir and not (self.train_dir and self.val_dir):
            raise UserError("--train-dir and --val-dir go together; give both folders.")
        starts = [flag for flag, on in (("--pretrained", self.pretrained),
                                        ("--pretrained-backbone", self.pretrained_backbone),
                                        ("--pretrained-params", self.pretrained_params)) if on]
        if len(starts) > 1:
            raise UserError(f"use one start, not {' and '.join(starts)}.")


def norm_layer(name, ctx):
    """``(norm_layer, norm_kwargs)`` of ``--norm-layer`` (see its help) on device ``ctx``."""
    if name == "syncbn":
        return mx.gluon.contrib.nn.SyncBatchNorm, {"num_devices": 1}
    return mx.gluon.nn.BatchNorm, {}


@dataclass
class SegmentationData:
    """What a segmentation run trains and evaluates on."""

    train: SegmentationSamples
    val: SegmentationSamples
    classes: int
    class_names: list
    train_samples: int
    val_samples: int
    fingerprints: dict


def _fingerprint(samples, split):
    """``'<folder> <split>: N pairs, list sha1 <12 hex>'`` over every file's name and size."""
    digest = hashlib.sha1()
    for pair in samples.items:
        for path in pair:
            digest.update(f"{os.path.relpath(path, samples.root)}\t"
                          f"{os.path.getsize(path)}\n".encode())
    return (f"{os.path.basename(os.path.normpath(samples.root))} {split}: {len(samples)} "
            f"pairs, list sha1 {digest.hexdigest()[:12]}")


def _samples(cfg):
    if cfg.data_dir:
        train = SegmentationSamples(cfg.data_dir, "train", cfg.classes)
        val = SegmentationSamples(cfg.data_dir, "val", cfg.classes)
    else:
        train = SegmentationSamples(cfg.train_dir, None, cfg.classes)
        val = SegmentationSamples(cfg.val_dir, None, cfg.classes)
    if train.classes != val.classes or train.num_classes != val.num_classes:
        raise UserError(f"the classes of {train.root} ({train.num_classes}) and {val.root} "
                        f"({val.num_classes}) differ, so a mask value would mean different "
                        "classes; give both splits the same classes.txt.")
    if train.classes is None:
        raise UserError(f"{train.root} names no classes; add a classes.txt (one name per "
                        "line, line i for PNG value i + 1) or pass --classes.")
    return train, val


@dataclass
class SegmentationRecipe:
    """What :func:`~.engine.train_epoch` asks a recipe, for segmentation."""

    num_epochs: int
    base_lr: float                  # global LR
    warmup_epochs: int = 0
    aux_weight: float = 0.0
    seed: int = 0
    log_interval: int = 50
    power: float = 0.9

    def begin_epoch(self, net, epoch):
        """Nothing changes per epoch (GluonCV trains ResNeSt's DropBlock at 0)."""

    def learning_rate(self, step, steps_per_epoch):
        """Warm-up, then poly (GluonCV's power 0.9), for the global update ``step``."""
        return poly_learning_rate(step, self.num_epochs * steps_per_epoch,
                                  self.warmup_epochs * steps_per_epoch, self.base_lr,
                                  self.power)

    def step_loss(self, rank, epoch, step):
        """Per-pixel cross-entropy, unlabelled pixels left out (+ the weighted aux loss)."""
        def loss(net, batch):
            return segmentation_loss(net(batch[0]), batch[1], self.aux_weight)
        return loss


class SegmentationTask:
    """What a segmentation run needs beyond the common runner; ``cfg`` is a
    :class:`SegmentationTrainConfig`."""

    name = "segmentation"
    config_class = SegmentationTrainConfig
    eval_keys = ("pixAcc", "mIoU", "val_samples")
    curve_keys = ("pixAcc", "mIoU")

    @staticmethod
    def eval_text(record):
        return (f" pixAcc {record['pixAcc']:.2f}% mIoU {record['mIoU']:.2f}% "
                f"({record['val_samples']} images)")

    def __init__(self, cfg):
        self.cfg = cfg

    def prepare(self, dist, log):
        """The :class:`SegmentationData`; every pair is read once, split over the ranks, so
        that a bad one (a mask of another size, a label beyond the classes) stops every rank
        with one sentence before training rather than one rank in the middle of an epoch."""
        train, val = _samples(self.cfg)
        started, error = time.perf_counter(), None
        try:
            for samples in (train, val):
                samples.check(val_shard(len(samples), dist.rank, dist.size))
        except UserError as err:
            error = err
        bad = dist.failed_ranks(error is None, "segmentation.check")
        if bad:
            raise error or UserError(f"rank(s) {', '.join(map(str, bad))} found a bad image / "
                                     "mask pair (named in its message); fix it and start "
                                     "again.")
        log(f"checked {len(train) + len(val)} image / mask pairs in "
            f"{time.perf_counter() - started:.1f} s")
        if self.cfg.batch_size * dist.size > len(train):
            raise UserError(f"--batch-size {self.cfg.batch_size} x {dist.size} worker(s) is "
                            f"larger than the {len(train)} training images of {train.root}; "
                            "use a smaller --batch-size.")
        prints = {"train_data": _fingerprint(train, "train"),
                  "val_data": _fingerprint(val, "val")}
        return SegmentationData(train, val, train.num_classes, list(train.classes), len(train),
                                len(val), prints)

    def run_identity(self, data, dist):
        return {"batch_size": self.cfg.batch_size, "lr": self.cfg.lr, "workers": dist.size,
                **data.fingerprints}

    def build_net(self, data, ctx, training=True):
        """The model, Xavier-initialised (gaussian, in, magnitude 2) on ``ctx``, hybridized
        in ``--mode hybrid``; the evaluation copy (``training=False``) has the same layers."""
        layer, kwargs = norm_layer(self.cfg.norm_layer, ctx)
        net = get_model(self.cfg.model, classes=data.classes, aux=self.cfg.aux,
                        norm_layer=layer, norm_kwargs=kwargs)
        net.initialize(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2),
                       ctx=ctx)
        if self.cfg.mode == "hybrid":
            net.hybridize(static_alloc=True, static_shape=True)
        return net

    def start_from_weights(self, net, data, ctx, log):
        cfg = self.cfg
        if cfg.pretrained_backbone:
            backbone = backbone_of(cfg.model)
            path = get_model_file(backbone)
            load_weights(net, path, ctx, name=backbone, ignore=("fc.",),
                         keep=net.head_prefixes())
            log(f"backbone from the published {backbone} ({path}); heads initialised")
            return
        if cfg.pretrained:
            info = PRETRAINED.get(cfg.model)
            if info is None or info.task != "segmentation":
                published = sorted(n for n, i in PRETRAINED.items() if i.task == "segmentation")
                raise UserError(f"--pretrained: {cfg.model} has no published weights (the "
                                f"published segmentation models: {', '.join(published)}); "
                                "use --pretrained-backbone to start from ImageNet.")
            path = get_model_file(cfg.model)
            arrays, names = read_params(path), published_classes(info.class_list).names
        else:
            path = cfg.pretrained_params
            record = record_beside(path)
            arrays = read_params(path, sha1=record.params_sha1 if record else None)
            if not any(k.startswith("head.") for k in arrays):
                load_weights(net, path, ctx, name=f"the backbone of {cfg.model}",
                             ignore=("fc.",), keep=net.head_prefixes(), arrays=arrays)
                log(f"backbone from the classifier {path}; heads initialised")
                return
            names = record.class_names if record else None
        fresh = _load_segmentation(net, path, arrays, names, data, ctx, cfg.model)
        log(f"started from {path}" + (f"; {', '.join(fresh)} initialised afresh (other "
                                      "classes, or not in the file)" if fresh else ""))

    def adjust_net(self, net, log):
        """Nothing to adjust (the heads already learn 10x faster: GluonCV's lr_mult)."""

    def loaders(self, dist, data, log):
        cfg = self.cfg
        train = PythonLoader(data.train, SegmentationTrainTransform(cfg.base_size, cfg.crop_size),
                             train_plan(len(data.train), cfg.batch_size, dist.rank, dist.size,
                                        cfg.seed),
                             cfg.batch_size, cfg.data_nthreads, dist.ctx)
        val = eval_loader(data.val, cfg.batch_size, SegmentationEvalTransform(cfg.crop_size),
                          dist.rank, dist.size, cfg.data_nthreads, dist.ctx)
        return train, val

    def recipe(self, data, workers):
        cfg = self.cfg
        return SegmentationRecipe(num_epochs=cfg.num_epochs, base_lr=global_lr(cfg.lr, workers),
                                  warmup_epochs=cfg.warmup_epochs,
                                  aux_weight=cfg.aux_weight if cfg.aux else 0.0, seed=cfg.seed,
                                  log_interval=cfg.log_interval)

    def evaluate(self, net, loader, dist, progress=None):
        """``{'pixAcc', 'mIoU', 'val_samples'}`` over every rank (GluonCV's validation: the
        short side resized to the crop, the centred crop)."""
        return evaluate_segmentation(net, loader, loader.samples.num_classes, dist,
                                     progress=progress).metrics()

    def eval_settings(self):
        """How the checkpoint is evaluated (segment.py and evaluate_segmentation.py read it)."""
        return {"base_size": self.cfg.base_size, "crop_size": self.cfg.crop_size}

    def describe(self, data):
        return (f"{data.classes} classes, {data.train_samples} training / {data.val_samples} "
                f"validation images, crop {self.cfg.crop_size}")


def _load_segmentation(net, path, arrays, names, data, ctx, model):
    """Load a segmentation model's ``arrays`` into ``net``: the class layers stay fresh when
    the file's classes differ from the data's (names, or count), the auxiliary head when the
    file has none; the file's auxiliary head is left out when ``net`` has none. Returns the
    prefixes left fresh."""
    fresh, ignore = [], []
    width = arrays.get("head.block.4.bias")
    other = (names is not None and names != data.class_names) or \
        (width is not None and int(width.shape[0]) != data.classes)
    if other:
        fresh += list(net.class_prefixes())
        ignore += list(net.class_prefixes()) + ["auxlayer.block.4."]
    has_aux = any(k.startswith("auxlayer.") for k in arrays)
    if net.auxlayer is None and has_aux:
        ignore.append("auxlayer.")
    elif net.auxlayer is not None and not has_aux:
        fresh.append("auxlayer.")
    fresh = sorted(set(fresh))
    load_weights(net, path, ctx, name=model, ignore=tuple(ignore), keep=tuple(fresh),
                 arrays=arrays)
    return fresh
