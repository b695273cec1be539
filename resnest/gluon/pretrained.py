"""Published weights and how they are evaluated: one typed table ("has weights" = "is in it").

Classifiers: the ResNeSt paper and its authors' Gluon release (resnest 0.0.5 and its
``scripts/gluon/verify.py``); GluonCV 0.10.5 for resnest14/26. Task models (segmentation,
detection): GluonCV 0.10.5's model zoo (``model_store.py`` for the hashes, its model-zoo tables
for the metrics). The weights store, the data loaders, ``verify.py``, ``predict.py`` and the
task scripts read their settings from here and nowhere else.
"""
import math
from dataclasses import dataclass, replace
from typing import Optional, Tuple

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "IMAGENET_MEAN_255", "IMAGENET_STD_255",
           "ECENTER_CROP_ABOVE", "DEFAULT_CROP_SIZE", "DEFAULT_CROP_RATIO", "EvalSettings",
           "SegmentationEval", "DetectionEval", "PretrainedInfo", "PRETRAINED", "eval_settings",
           "segmentation_eval"]

# The normalisation of the published weights, in training and evaluation (the authors' scripts
# pass these to MXNet's transforms.Normalize after ToTensor; GluonCV's segmentation and
# detection transforms use the same): torchvision's ImageNet RGB mean and std on [0, 1], and
# the same on 0..255 for MXNet's C++ ImageRecordIter.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)
IMAGENET_STD_255 = (58.395, 57.12, 57.375)

# The authors' verify.py: crops up to 320 resize the short side to ceil(crop / crop_ratio)
# (MXNet, bilinear) and centre-crop; larger crops use "ECenterCrop" (PIL crop of the centred
# square of crop / (crop + 32) of the short side, PIL bicubic resize to crop x crop).
ECENTER_CROP_ABOVE = 320
# A classifier without published settings (a new model, a checkpoint): 224 at 0.875, the
# ImageNet convention, in training (--input-size, --crop-ratio) and evaluation alike.
DEFAULT_CROP_SIZE = 224
DEFAULT_CROP_RATIO = 0.875


@dataclass(frozen=True)
class EvalSettings:
    """Single-crop evaluation preprocessing of a classifier (see :data:`ECENTER_CROP_ABOVE`)."""

    crop_size: int = DEFAULT_CROP_SIZE
    crop_ratio: float = DEFAULT_CROP_RATIO
    mean: Tuple[float, float, float] = IMAGENET_MEAN      # on [0, 1]
    std: Tuple[float, float, float] = IMAGENET_STD

    @property
    def method(self):
        """'resize-center-crop' (crops <= 320) or 'ecenter-crop' (larger)."""
        return "ecenter-crop" if self.crop_size > ECENTER_CROP_ABOVE else "resize-center-crop"

    @property
    def resize(self):
        """Short side before the centre crop on the resize path: ``ceil(crop / ratio)``."""
        return int(math.ceil(self.crop_size / self.crop_ratio))


@dataclass(frozen=True)
class SegmentationEval:
    """How GluonCV 0.10.5 evaluates its segmentation models; the protocols themselves are in
    :mod:`resnest.gluon.models.segmentation.evaluation`.

    * Multi-scale + flip (``segbase.py`` ``MultiEvalModel``; what ``scripts/segmentation/
      test.py --eval`` ran for DeepLab in GluonCV 0.7, which published the ResNeSt models):
      for each of ``scales``, the long side resized to ``ceil(base_size * scale)``; an image
      no longer than ``crop_size`` is padded to it, a larger one is cut into ``crop_size``
      windows ``int(crop_size * stride_rate)`` apart (each padded to ``crop_size``); padding
      is the normalised black pixel (``-mean / std``) at the bottom and right; each window's
      logits plus those of its mirror image (``flip``) are exponentiated, averaged where
      windows overlap, resized back to the image and summed over the scales.
    * Single scale (test.py since GluonCV 0.8, whose ``'icnet' or 'fastscnn' in model`` test
      is always true, so every model takes its ICNet path): the whole image at its own size,
      no resize, padding or crop (dataset mode ``testval``), the main output of
      ``model.predict``.
    * In-training validation (train.py, dataset mode ``val``): the short side resized to
      ``crop_size`` (PIL bilinear, long side ``int(long * crop / short)``), then the centred
      ``crop_size`` square (``_val_sync_transform``).

    ``base_size`` / ``crop_size`` are the model's (train.py's ``--base-size 520 --crop-size
    480`` for the published DeepLab models); ``mean`` / ``std`` are test.py's ``Normalize``
    after ``ToTensor``, and give the padding value.
    """

    base_size: int = 520
    crop_size: int = 480
    scales: Tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
    flip: bool = True
    stride_rate: float = 2.0 / 3.0
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class DetectionEval:
    """How GluonCV evaluates its Faster R-CNN FPN models: ``FasterRCNNDefaultValTransform``
    with the model's ``max_size`` and the last of its ``short`` (GluonCV's FPN models have
    ``short=(640, 800)``, a training range; its train script validates at ``short[-1]``). The
    short side goes to ``short`` unless the long side would pass ``max_size``; bilinear
    (OpenCV through ``mx.image.imresize``); ImageNet mean/std on [0, 1]. Boxes are clipped to
    the resized image and scaled back by original / resized height. ``train_short`` is the
    training range (one short side drawn per image)."""

    short: int = 800
    max_size: int = 1333
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    train_short: Tuple[int, int] = (640, 800)


@dataclass(frozen=True)
class PretrainedInfo:
    """One published ``.params`` file: where it is hosted, what it was trained for, how it
    was evaluated and the published figures.

    ``published_name`` is the file's model name when it differs from the registry name
    (GluonCV's ``faster_rcnn_fpn_syncbn_resnest50_coco`` for ``faster_rcnn_fpn_resnest50_coco``).
    ``class_list`` names the class list of :mod:`resnest.gluon.classes` the outputs follow.
    ``metrics`` are the published figures as ``(name, value)`` pairs, in %.
    """

    name: str
    sha1: str
    hosts: Tuple[str, ...]                  # stores holding the zip, tried in order (store.py)
    task: str = "classification"
    eval: object = EvalSettings()
    metrics: Tuple[Tuple[str, float], ...] = ()
    params_m: Optional[float] = None        # trainable parameters, millions
    class_list: str = "imagenet"
    classes: int = 1000
    published_name: Optional[str] = None

    @property
    def stem(self):
        """``{model}-{sha1[:8]}``: the published file is ``stem + '.params'``, zipped as
        ``stem + '.zip'``."""
        return f"{self.published_name or self.name}-{self.sha1[:8]}"

    @property
    def file_name(self):
        """``{model}-{sha1[:8]}.params``, the name in the store."""
        return self.stem + ".params"

    def metric(self, key):
        """A published figure (e.g. ``'top1'``, ``'mIoU'``, ``'box_AP'``), or None."""
        return dict(self.metrics).get(key)


_GLUONCV, _AUTHORS, _BOTH = ("gluoncv",), ("authors",), ("gluoncv", "authors")


def _classifier(name, sha1, crop, top1, top5, params_m, hosts):
    metrics = (("top1", top1),) + ((("top5", top5),) if top5 is not None else ())
    return PretrainedInfo(name, sha1, hosts, eval=EvalSettings(crop), metrics=metrics,
                          params_m=params_m)


def _deeplab(depth, sha1, pix_acc, miou):
    return PretrainedInfo(f"deeplab_resnest{depth}_ade", sha1, _GLUONCV, task="segmentation",
                          eval=SegmentationEval(), metrics=(("pixAcc", pix_acc), ("mIoU", miou)),
                          class_list="ade20k", classes=150)


def _faster_rcnn(depth, sha1, ap, ap50, ap75):
    return PretrainedInfo(f"faster_rcnn_fpn_resnest{depth}_coco", sha1, _GLUONCV,
                          task="detection", eval=DetectionEval(),
                          metrics=(("box_AP", ap), ("box_AP50", ap50), ("box_AP75", ap75)),
                          class_list="coco", classes=80,
                          published_name=f"faster_rcnn_fpn_syncbn_resnest{depth}_coco")


_ROWS = [
    _classifier("resnest14", "7e0b0cae2fd7e9084d1e498b858af1429a6eb1cb", 224, 75.75, 92.70, 10.61, _GLUONCV),
    _classifier("resnest26", "364590740605b6a2b95f5bb77436d781a817436f", 224, 78.68, 94.38, 17.07, _GLUONCV),
    _classifier("resnest50", "bcfefe1dd1dd1ef5cfed5563123c1490ea37b42e", 224, 81.04, 95.42, 27.48, _BOTH),
    _classifier("resnest101", "5da943b3230f071525a98639945a6b3b3a45ac95", 256, 82.81, 96.42, 48.28, _BOTH),
    _classifier("resnest200", "0c5d117df664ace220aa6fc2922c094bb079d381", 320, 83.88, 96.86, 70.20, _BOTH),
    _classifier("resnest269", "11ae7f5da2bcdbad05ba7e84f9b74383e717f3e3", 416, 84.53, 96.98, 110.93, _BOTH),
    _classifier("resnest50_fast_1s1x64d", "5e16dbe56f1fba8e1bc2faddd91f874bfbd74193", 224, 80.35, None, 26.22, _AUTHORS),
    _classifier("resnest50_fast_2s1x64d", "85eb779a5e313d74b5e5390dae02aa8082a0f469", 224, 80.65, None, 27.48, _AUTHORS),
    _classifier("resnest50_fast_4s1x64d", "3f215532c6d8e07a10df116309993d4479fc3e4b", 224, 80.90, None, 31.91, _AUTHORS),
    _classifier("resnest50_fast_1s2x40d", "af3514c2ec757a3a9666a75b82f142ed47d55bee", 224, 80.72, None, 25.95, _AUTHORS),
    _classifier("resnest50_fast_2s2x40d", "2db13245aa4967cf5e8617cb4911880dd41628a4", 224, 80.84, None, 26.94, _AUTHORS),
    _classifier("resnest50_fast_4s2x40d", "b24d515797832e02da4da9c8a15effd5e44cfb56", 224, 81.17, None, 30.42, _AUTHORS),
    _classifier("resnest50_fast_1s4x24d", "7318153ddb5e542a20cc6c58192f3c6209cff9ed", 224, 80.97, None, 25.68, _AUTHORS),
    _deeplab(50, "a8312db6e30a464151580f2bda83479786455724", 81.2, 45.1),
    _deeplab(101, "6d05c630fb7acb38615f7f4d360fb90f47b25042", 82.1, 46.9),
    _deeplab(200, "9134a6f7d1399b549d5803d8faed3dfc74efc0d8", 82.5, 48.4),
    _deeplab(269, "d45b33dedf4cca13b8147213c5360e30f93685bd", 82.6, 47.6),
    _faster_rcnn(50, "6df46961827647d418b11ffaf616a6a60d9dd16e", 42.7, 64.1, 46.4),
    _faster_rcnn(101, "baebfa1b7d7f56dd33a7687efea4b014736bd791", 44.9, 66.4, 48.9),
    _faster_rcnn(269, "b7d778f58921e459a6af200f6a323d6fe67069b9", 46.5, 67.5, 50.7),
]

PRETRAINED = {row.name: row for row in _ROWS}


def segmentation_eval(model=None, **overrides):
    """The evaluation settings of segmentation model ``model`` (its published ones; GluonCV's
    defaults for a model without published weights), with keyword ``overrides`` (e.g.
    ``base_size=``, ``scales=``, ``flip=``) replacing fields."""
    info = PRETRAINED.get(model)
    base = info.eval if info is not None and isinstance(info.eval, SegmentationEval) \
        else SegmentationEval()
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def eval_settings(model=None, crop_size=None, crop_ratio=None):
    """The evaluation settings of classifier ``model`` (its published ones; the defaults for a
    model without published weights), with ``crop_size`` / ``crop_ratio`` overriding them as
    verify.py's flags do."""
    info = PRETRAINED.get(model)
    base = info.eval if info is not None and isinstance(info.eval, EvalSettings) \
        else EvalSettings()
    crop = crop_size if crop_size is not None else base.crop_size
    ratio = crop_ratio if crop_ratio is not None else base.crop_ratio
    return EvalSettings(int(crop), float(ratio), base.mean, base.std)
