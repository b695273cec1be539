"""Published weights and how they are evaluated: one typed table ("has weights" = "is in it").

Figures from the ResNeSt paper and its authors' Gluon release (resnest 0.0.5 and its
``scripts/gluon/verify.py``); GluonCV 0.10.5 for resnest14/26. The weights store, the data
loaders, ``verify.py`` and ``predict.py`` read their settings from here and nowhere else.
"""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "IMAGENET_MEAN_255", "IMAGENET_STD_255", "ECENTER_CROP_ABOVE", "PretrainedInfo",
           "PRETRAINED", "EvalSettings", "eval_settings"]

# The normalisation of the published weights, in training and evaluation (the authors' scripts
# pass these to MXNet's transforms.Normalize after ToTensor): torchvision's ImageNet RGB mean
# and std on [0, 1], and the same on 0..255 for MXNet's C++ ImageRecordIter.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)
IMAGENET_STD_255 = (58.395, 57.12, 57.375)

# The authors' verify.py: crops up to 320 resize the short side to ceil(crop / crop_ratio)
# (MXNet, bilinear) and centre-crop; larger crops use "ECenterCrop" (PIL crop of the centred
# square of crop / (crop + 32) of the short side, PIL bicubic resize to crop x crop).
ECENTER_CROP_ABOVE = 320


@dataclass(frozen=True)
class PretrainedInfo:
    """One published ``.params`` file, where it is hosted and how the model was evaluated."""

    name: str
    sha1: str
    crop_size: int
    top1: float
    top5: Optional[float]           # not published for the fast variants
    params_m: float                 # trainable parameters, millions
    hosts: Tuple[str, ...]          # stores holding the zip, tried in order (see store.py)
    crop_ratio: float = 0.875       # crop / resized short side (crops <= 320)
    classes: int = 1000

    @property
    def stem(self):
        """``{model}-{sha1[:8]}``: the published file is ``stem + '.params'``, zipped as
        ``stem + '.zip'``."""
        return f"{self.name}-{self.sha1[:8]}"

    @property
    def file_name(self):
        """``{model}-{sha1[:8]}.params``, the name in the store."""
        return self.stem + ".params"


_GLUONCV, _AUTHORS, _BOTH = ("gluoncv",), ("authors",), ("gluoncv", "authors")
_ROWS = [
    PretrainedInfo("resnest14", "7e0b0cae2fd7e9084d1e498b858af1429a6eb1cb", 224, 75.75, 92.70, 10.61, _GLUONCV),
    PretrainedInfo("resnest26", "364590740605b6a2b95f5bb77436d781a817436f", 224, 78.68, 94.38, 17.07, _GLUONCV),
    PretrainedInfo("resnest50", "bcfefe1dd1dd1ef5cfed5563123c1490ea37b42e", 224, 81.04, 95.42, 27.48, _BOTH),
    PretrainedInfo("resnest101", "5da943b3230f071525a98639945a6b3b3a45ac95", 256, 82.81, 96.42, 48.28, _BOTH),
    PretrainedInfo("resnest200", "0c5d117df664ace220aa6fc2922c094bb079d381", 320, 83.88, 96.86, 70.20, _BOTH),
    PretrainedInfo("resnest269", "11ae7f5da2bcdbad05ba7e84f9b74383e717f3e3", 416, 84.53, 96.98, 110.93, _BOTH),
    PretrainedInfo("resnest50_fast_1s1x64d", "5e16dbe56f1fba8e1bc2faddd91f874bfbd74193", 224, 80.35, None, 26.22, _AUTHORS),
    PretrainedInfo("resnest50_fast_2s1x64d", "85eb779a5e313d74b5e5390dae02aa8082a0f469", 224, 80.65, None, 27.48, _AUTHORS),
    PretrainedInfo("resnest50_fast_4s1x64d", "3f215532c6d8e07a10df116309993d4479fc3e4b", 224, 80.90, None, 31.91, _AUTHORS),
    PretrainedInfo("resnest50_fast_1s2x40d", "af3514c2ec757a3a9666a75b82f142ed47d55bee", 224, 80.72, None, 25.95, _AUTHORS),
    PretrainedInfo("resnest50_fast_2s2x40d", "2db13245aa4967cf5e8617cb4911880dd41628a4", 224, 80.84, None, 26.94, _AUTHORS),
    PretrainedInfo("resnest50_fast_4s2x40d", "b24d515797832e02da4da9c8a15effd5e44cfb56", 224, 81.17, None, 30.42, _AUTHORS),
    PretrainedInfo("resnest50_fast_1s4x24d", "7318153ddb5e542a20cc6c58192f3c6209cff9ed", 224, 80.97, None, 25.68, _AUTHORS),
]

PRETRAINED = {row.name: row for row in _ROWS}


@dataclass(frozen=True)
class EvalSettings:
    """Single-crop evaluation preprocessing of one model (see :data:`ECENTER_CROP_ABOVE`)."""

    crop_size: int
    crop_ratio: float
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


def eval_settings(model=None, crop_size=None, crop_ratio=None):
    """The evaluation settings of ``model`` (its published ones; 224 at 0.875 for a model
    without published weights), with ``crop_size`` / ``crop_ratio`` overriding them as
    verify.py's flags do."""
    info = PRETRAINED.get(model)
    crop = crop_size if crop_size is not None else (info.crop_size if info else 224)
    ratio = crop_ratio if crop_ratio is not None else (info.crop_ratio if info else 0.875)
    return EvalSettings(int(crop), float(ratio))
