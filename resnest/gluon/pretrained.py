"""Published weights and their evaluation settings: one typed table ("has weights" = "is in it").

Figures from the ResNeSt paper and its authors' Gluon release (``shared/REFERENCE.md``).
verify.py, the data pipelines and the weights store read their defaults from here.
"""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

__all__ = ["PretrainedInfo", "PRETRAINED", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (123.68, 116.779, 103.939)   # RGB, on 0..255
IMAGENET_STD = (58.393, 57.12, 57.375)


@dataclass(frozen=True)
class PretrainedInfo:
    """One published ``.params`` file and how the model was evaluated."""

    name: str
    sha1: str
    crop_size: int
    top1: float
    top5: Optional[float]           # not published for the fast variants
    params_m: float                 # trainable parameters, millions
    crop_ratio: float = 0.875       # crop / resized short side
    interpolation: str = "bilinear"
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    classes: int = 1000

    @property
    def file_name(self):
        """``{model}-{sha1[:8]}.params``, the name in the store."""
        return f"{self.name}-{self.sha1[:8]}.params"

    @property
    def resize(self):
        """Short side before the center crop, e.g. 256 for 224 at 0.875."""
        return int(math.ceil(self.crop_size / self.crop_ratio))


def _bicubic(size):
    # resnest200/269: center crop of size/(size+32) of the short side, bicubic resize.
    return dict(crop_ratio=size / (size + 32), interpolation="bicubic")


_ROWS = [
    PretrainedInfo("resnest14", "7e0b0cae2fd7e9084d1e498b858af1429a6eb1cb", 224, 75.75, 92.70, 10.61),
    PretrainedInfo("resnest26", "364590740605b6a2b95f5bb77436d781a817436f", 224, 78.68, 94.38, 17.07),
    PretrainedInfo("resnest50", "bcfefe1dd1dd1ef5cfed5563123c1490ea37b42e", 224, 81.04, 95.42, 27.48),
    PretrainedInfo("resnest101", "5da943b3230f071525a98639945a6b3b3a45ac95", 256, 82.81, 96.42, 48.28),
    PretrainedInfo("resnest200", "0c5d117df664ace220aa6fc2922c094bb079d381", 320, 83.88, 96.86, 70.20,
                   **_bicubic(320)),
    PretrainedInfo("resnest269", "11ae7f5da2bcdbad05ba7e84f9b74383e717f3e3", 416, 84.53, 96.98, 110.93,
                   **_bicubic(416)),
    PretrainedInfo("resnest50_fast_1s1x64d", "5e16dbe56f1fba8e1bc2faddd91f874bfbd74193", 224, 80.35, None, 26.22),
    PretrainedInfo("resnest50_fast_2s1x64d", "85eb779a5e313d74b5e5390dae02aa8082a0f469", 224, 80.65, None, 27.48),
    PretrainedInfo("resnest50_fast_4s1x64d", "3f215532c6d8e07a10df116309993d4479fc3e4b", 224, 80.90, None, 31.91),
    PretrainedInfo("resnest50_fast_1s2x40d", "af3514c2ec757a3a9666a75b82f142ed47d55bee", 224, 80.72, None, 25.95),
    PretrainedInfo("resnest50_fast_2s2x40d", "2db13245aa4967cf5e8617cb4911880dd41628a4", 224, 80.84, None, 26.94),
    PretrainedInfo("resnest50_fast_4s2x40d", "b24d515797832e02da4da9c8a15effd5e44cfb56", 224, 81.17, None, 30.42),
    PretrainedInfo("resnest50_fast_1s4x24d", "7318153ddb5e542a20cc6c58192f3c6209cff9ed", 224, 80.97, None, 25.68),
]

PRETRAINED = {row.name: row for row in _ROWS}
