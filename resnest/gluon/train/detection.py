"""Detection (Faster R-CNN FPN) and instance segmentation (Mask R-CNN FPN) as training tasks:
COCO-format data, GluonCV's recipe (:mod:`.det_recipe`), the COCO mAP evaluator, and the three
starts (the backbone's ImageNet classifier, one of our checkpoints, a published detector).

>>> from resnest.gluon.train import train
>>> from resnest.gluon.train.detection import DetectionTask, parse_detection_config
>>> cfg = parse_detection_config(["--train-annotations", "train.json", ...])
>>> train(cfg, DetectionTask(cfg))

The defaults are GluonCV's COCO recipe of the published ResNeSt detectors: SGD, momentum 0.9,
weight decay 1e-4, LR 0.02 for 16 images (8 workers x 2 images x 0.00125), warm-up over 500
iterations from a third, x0.1 at epochs 20 and 24 of 26, SyncBatchNorm; training short sides
and the evaluation size from the model's row of :mod:`resnest.gluon.pretrained`.

BatchNorm learns from the images of one device: the split-attention's BN sees one value per
image and channel, so one image per device gives it nothing (GluonCV trains 1 per GPU with
SyncBatchNorm across 8 GPUs in one process). Training here takes at least 2 images per
device. ``--norm-layer syncbn`` is MXNet's ``SyncBatchNorm`` over the devices of one process
(as GluonCV's script; under Horovod each rank normalises its own images, GluonCV's own note);
``bn`` is plain BatchNorm.
"""
import os
from dataclasses import dataclass
from typing import List, Optional

import mxnet as mx
from mxnet.gluon import nn

from ..checkpoint import record_beside
from ..data.coco import CocoSamples
from ..data.det_samples import DetectionSamples
from ..data.det_transforms import DetectionEvalSample, DetectionTrainTransform
from ..data.detection import detection_eval_transform
from ..data.loaders import PythonLoader, eval_loader, train_plan
from ..evaluate.detection import SCORE_THRESH, evaluate_detection
from ..models import get_model, model_task
from ..models.detection import load_gluoncv_params
from ..store import get_model_file, load_weights, read_params
from ..utils.checksum import sha1_file
from ..utils.config import (FRACTION, NON_NEGATIVE, POSITIVE, UNIT, at_least, build_parser,
                            option, parse_config)
from ..utils.errors import UserError
from .config import RunConfig
from .det_recipe import DetectionRecipe
from .inputs import TrainData
from .schedule import global_lr

__all__ = ["DetectionTrainConfig", "DetectionTask", "parse_detection_config", "NORM_LAYERS",
           "DETECTION_TASKS"]

NORM_LAYERS = ("syncbn", "bn")
DETECTION_TASKS = ("detection", "instance-segmentation")
_PREDICTORS = ("class_predictor.", "box_predictor.")


@dataclass
class DetectionTrainConfig(RunConfig):
    """A detection run: :class:`~.config.RunConfig` plus COCO-format data and GluonCV's
    recipe (its defaults: see the module doc)."""

    model: str = option("faster_rcnn_fpn_resnest50_coco", "registered detection or instance-"
                        "segmentation model", group="recipe")
    batch_size: int = option(2, "images per worker (at least 2: see the module doc)",
                             check=at_least(2), group="recipe")
    lr: float = option(0.0025, "per worker; the global LR is lr x workers (GluonCV: 0.02 for "
                       "8 workers of 2 images)", check=POSITIVE, group="recipe")
    optimizer: str = option("sgd", choices=("sgd", "nag"), group="recipe")
    num_epochs: int = option(26, check=POSITIVE, group="recipe", operational=True)
    warmup_iters: int = option(500, "linear warm-up over this many iterations",
                               check=NON_NEGATIVE, group="recipe")
    warmup_factor: float = option(1.0 / 3, "the warm-up starts at this fraction of the LR",
                                  check=UNIT, group="recipe")
    lr_decay_epoch: List[int] = option([20, 24], "epochs at which the LR is multiplied by "
                                       "--lr-decay", nargs="*", check=NON_NEGATIVE,
                                       group="recipe")
    lr_decay: float = option(0.1, check=POSITIVE, group="recipe")
    norm_layer: str = option("syncbn", "normalisation everywhere (see the module doc)",
                             choices=NORM_LAYERS, group="recipe")
    pretrained_backbone: bool = option(False, "start the backbone from its published "
                                       "ImageNet classifier", group="fine-tuning")
    backbone_params: str = option("", "start the backbone from this classifier checkpoint "
                                  "(.params of the backbone's classifier)", metavar="FILE",
                                  group="fine-tuning")
    train_annotations: str = option("", "COCO-format JSON of the training images",
                                    required=True, metavar="FILE", group="data")
    train_images: str = option("", "the folder its file_name entries are in", required=True,
                               metavar="DIR", group="data")
    val_annotations: str = option("", "COCO-format JSON of the validation images",
                                  required=True, metavar="FILE", group="data")
    val_images: str = option("", required=True, metavar="DIR", group="data")
    train_short: List[int] = option([], "short side of training images: one value or a range "
                                    "LOW HIGH drawn per image (default: the model's, GluonCV's "
                                    "640 800)", nargs="*", check=POSITIVE, group="data")
    max_size: Optional[int] = option(None, "longest side (default: the model's, 1333)",
                                     check=POSITIVE, group="data")
    val_short: Optional[int] = option(None, "short side in evaluation (default: the "
                                      "model's, 800)", check=POSITIVE, group="data")
    score_thresh: float = option(SCORE_THRESH, "evaluation drops detections scoring below "
                                 "(GluonCV's COCO metric: 0.05)", check=FRACTION, group="data")
    no_flip: bool = option(False, "no random horizontal flips", group="data")

    def check(self):
        super().check()
        starts = [f for f, on in (("--pretrained", self.pretrained),
                                  ("--pretrained-params", self.pretrained_params),
                                  ("--pretrained-backbone", self.pretrained_backbone),
                                  ("--backbone-params", self.backbone_params)) if on]
        if len(starts) > 1:
            raise UserError(f"{' and '.join(starts)} are different starts; give one of them.")
        if len(self.train_short) > 2 or (len(self.train_short) == 2 and
                                         self.train_short[0] > self.train_short[1]):
            raise UserError(f"--train-short takes one short side or a range LOW HIGH, got "
                            f"{' '.join(map(str, self.train_short))}.")
        if list(self.lr_decay_epoch) != sorted(self.lr_decay_epoch):
            raise UserError("--lr-decay-epoch must list epochs in increasing order.")
        if self.warmup_epochs:
            raise UserError("detection warms up by iterations: use --warmup-iters, not "
                            "--warmup-epochs.")

    def sizes(self):
        """``(train_short, max_size, val_short)`` with the model's defaults filled in."""
        base = detection_eval_transform(self.model).settings
        return (tuple(self.train_short) or tuple(base.train_short),
                self.max_size or base.max_size, self.val_short or base.short)


def parse_detection_config(argv=None):
    """Parse a ``train_detection.py`` command line into a checked config."""
    parser = build_parser(DetectionTrainConfig, "Train a Faster / Mask R-CNN FPN on COCO-format "
                          "data, in one process or under horovodrun.")
    parser.add_argument("--verbose", action="store_true", help="also show MXNet's native log "
                        "lines")
    return parse_config(DetectionTrainConfig, parser, argv)


def _fingerprint(path, count):
    return f"{os.path.basename(path)}: {count} images, sha1 {sha1_file(path)[:12]}"


def _norm(name):
    if name == "syncbn":
        return mx.gluon.contrib.nn.SyncBatchNorm, {"num_devices": 1}
    return nn.BatchNorm, None


class DetectionTask:
    """What a detection run needs beyond the common runner; ``cfg`` is a
    :class:`DetectionTrainConfig`."""

    config_class = DetectionTrainConfig
    curve_keys = ("box_ap", "box_ap50")

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = model_task(cfg.model)
        if self.name not in DETECTION_TASKS:
            raise UserError(f"--model {cfg.model} is a {self.name} model; train_detection.py "
                            "trains detection and instance-segmentation models.")
        self.masks = self.name == "instance-segmentation"
        self.eval_keys = ("box_ap", "box_ap50", "box_ap75", "val_samples") + \
            (("mask_ap",) if self.masks else ())
        self.train_short, self.max_size, self.val_short = cfg.sizes()
        self.data = None

    def eval_text(self, record):
        """The evaluation part of an epoch's log line."""
        mask = f" mask AP {record['mask_ap']:.2f}" if record.get("mask_ap") is not None else ""
        return (f" box AP {record['box_ap']:.2f} AP50 {record['box_ap50']:.2f}{mask} "
                f"({record['val_samples']} images)")

    def input_extent(self):
        """The largest input side and its flag (the runner's memory check)."""
        return self.max_size, "--max-size"

    def prepare(self, dist, log):
        cfg = self.cfg
        train = CocoSamples(cfg.train_annotations, cfg.train_images)
        val = CocoSamples(cfg.val_annotations, cfg.val_images)
        if val.classes != train.classes:
            raise UserError(f"the categories of {cfg.val_annotations} differ from those of "
                            f"{cfg.train_annotations} ({len(val.classes)} vs "
                            f"{len(train.classes)}); validate on the same categories.")
        log(train.report())
        log(val.report())
        samples = DetectionSamples(train, training=True, masks=self.masks)
        if samples.left_out:
            log(f"{samples.left_out} training images have no box to learn from (crowd or "
                "area-less annotations only, or none) and are left out, as GluonCV does")
        if cfg.batch_size * dist.size > len(samples):
            raise UserError(f"--batch-size {cfg.batch_size} x {dist.size} worker(s) is larger "
                            f"than the {len(samples)} training images; use a smaller "
                            "--batch-size.")
        data = TrainData(cfg.train_annotations, cfg.val_annotations, len(train.classes),
                         list(train.classes), len(samples), len(val), {
                             "train_data": _fingerprint(cfg.train_annotations, len(samples)),
                             "val_data": _fingerprint(cfg.val_annotations, len(val))})
        data.train, data.val = samples, DetectionSamples(val, training=False)
        self.data = data
        return data

    def run_identity(self, data, dist):
        return {"batch_size": self.cfg.batch_size, "lr": self.cfg.lr, "workers": dist.size,
                **data.fingerprints}

    def build_net(self, data, ctx, training=True):
        cfg = self.cfg
        norm_layer, norm_kwargs = _norm(cfg.norm_layer)
        backbone = (cfg.backbone_params or cfg.pretrained_backbone) if training else False
        net = get_model(cfg.model, classes=data.class_names, pretrained_backbone=backbone,
                        ctx=ctx, norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        if not backbone:
            net.initialize(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2),
                           ctx=ctx)
        if cfg.mode == "hybrid":
            net.hybridize()
        return net

    def start_from_weights(self, net, data, ctx, log):
        """``--pretrained`` (the published detector) or ``--pretrained-params`` (one of our
        checkpoints, or a file in GluonCV's layout); other classes than the file's get fresh
        class and box predictors."""
        cfg = self.cfg
        source = cfg.pretrained_params or get_model_file(cfg.model)
        record = record_beside(source) if cfg.pretrained_params else None
        arrays = read_params(source, sha1=record.params_sha1 if record else None)
        if any(k.startswith("features.") for k in arrays):          # GluonCV's layout
            names = None if record else _gluoncv_classes(cfg.model, arrays, cfg.pretrained)
            fresh = () if names == data.class_names else _PREDICTORS
            load_gluoncv_params(net, source, ctx=ctx, fresh=fresh, name=cfg.model)
        else:
            if record is not None and record.model != cfg.model:
                raise UserError(f"{source} holds {record.model} weights, not {cfg.model}; give "
                                "a checkpoint of the same model.")
            names = record.class_names if record else _same_count(arrays, data.class_names)
            fresh = () if names == data.class_names else _PREDICTORS
            # The predictors of other classes keep their fresh initialisation.
            load_weights(net, source, ctx=ctx, name=cfg.model, arrays=arrays, ignore=fresh,
                         keep=fresh)
        log(f"started from {source}" + (" (fresh class and box predictors: other classes)"
                                        if fresh else ""))

    def adjust_net(self, net, log):
        """Nothing to adjust (no frozen parts in this recipe)."""

    def loaders(self, dist, data, log):
        cfg = self.cfg
        transform = DetectionTrainTransform(self.train_short, self.max_size,
                                            flip_p=0.0 if cfg.no_flip else 0.5)
        train = PythonLoader(data.train, transform, train_plan(
            len(data.train), cfg.batch_size, dist.rank, dist.size, cfg.seed), cfg.batch_size,
            cfg.data_nthreads, dist.ctx)
        evaluation = DetectionEvalSample(detection_eval_transform(
            cfg.model, short=self.val_short, max_size=self.max_size))
        # One image per batch: each image's detections do not depend on its neighbours'
        # padding, as in GluonCV's evaluation.
        val = eval_loader(data.val, 1, evaluation, dist.rank, dist.size, cfg.data_nthreads,
                          dist.ctx)
        return train, val

    def recipe(self, data, workers):
        cfg = self.cfg
        return DetectionRecipe(num_epochs=cfg.num_epochs, base_lr=global_lr(cfg.lr, workers),
                               warmup_steps=cfg.warmup_iters, warmup_factor=cfg.warmup_factor,
                               decay_epochs=tuple(cfg.lr_decay_epoch), decay=cfg.lr_decay,
                               masks=self.masks, seed=cfg.seed, log_interval=cfg.log_interval)

    def evaluate(self, net, loader, dist, progress=None):
        return evaluate_detection(net, loader, self.data.val, self.data.class_names, dist,
                                  self.cfg.score_thresh, progress).metrics()

    def eval_settings(self):
        """How the checkpoint is evaluated (detect.py and evaluate_detection.py read it)."""
        return {"short": self.val_short, "max_size": self.max_size}

    def describe(self, data):
        return (f"{data.classes} classes, {data.train_samples} training / {data.val_samples} "
                f"validation images, training short side {'..'.join(map(str, self.train_short))}"
                f" within {self.max_size}, {self.cfg.norm_layer}")


def _gluoncv_classes(model, arrays, published):
    """The class names of a GluonCV-layout file: COCO's for the published weights (or any
    file predicting 80 classes), else unknown."""
    from ..classes import published_classes
    coco = published_classes("coco").names
    width = next((v.shape[0] for k, v in arrays.items() if k == "class_predictor.weight"), None)
    return coco if published or width == len(coco) + 1 else None


def _same_count(arrays, class_names):
    """A bare file's class names: taken to be ``class_names`` when it predicts as many."""
    weight = arrays.get("class_predictor.weight")
    return class_names if weight is not None and weight.shape[0] == len(class_names) + 1 \
        else None
