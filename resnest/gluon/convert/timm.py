"""timm's ResNeSt (``timm/models/resnest.py`` with ``timm/layers/split_attn.py``).

timm builds ResNeSt from its generic ``ResNet``: the deep stem ``conv1.{0,1,3,4,6}`` and
``bn1``, blocks ``layerS.B.{conv1,bn1,conv2,conv3,bn3}``, the shortcut ``downsample.{0: pool
or Identity, 1: conv, 2: BN}``, ``SplitAttn`` with ``conv``, ``bn0``, ``fc1``, ``bn1``,
``fc2``, and the classifier ``fc``: the authors' torch names exactly (:mod:`.torch`). Its
``rd_channels`` rounding (``make_divisible(in * radix / 4, 32, 8)``) gives our
``max(in * radix // 4, 32)`` for every width of the models below.

Dilation differs: timm's ``output_stride`` drops the stride-1 avd pool of the first dilated
block and pools its shortcut with ``AvgPool2dSame(2, 1)``, so a dilated network of ours and
timm's with ``output_stride`` compute different features from the same weights; at the
classifiers' stride 32 they are the same network.
"""
from .names import Layout
from .torch import PYTORCH_MODULES

__all__ = ["LAYOUT", "TIMM_MODELS", "model_name"]

LAYOUT = Layout("timm", "timm", PYTORCH_MODULES)

# Our model -> timm's. timm's resnest14d/26d are ports of the Gluon weights; the others hold
# the authors' separately trained PyTorch weights.
TIMM_MODELS = {"resnest14": "resnest14d", "resnest26": "resnest26d", "resnest50": "resnest50d",
               "resnest101": "resnest101e", "resnest200": "resnest200e",
               "resnest269": "resnest269e", "resnest50_fast_4s2x40d": "resnest50d_4s2x40d",
               "resnest50_fast_1s4x24d": "resnest50d_1s4x24d"}


def model_name(model):
    """timm's registered name of our ``model``, or None (timm's ``ResNet`` class still builds
    it from the same settings)."""
    return TIMM_MODELS.get(model)
