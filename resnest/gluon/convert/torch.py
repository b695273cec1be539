"""The authors' PyTorch code, ``resnest.torch`` of resnest 0.0.5 (and their released ``.pth``).

Read from their ``resnet.py`` and ``splat.py``: the stem is ``conv1`` (a Sequential of conv,
BN, ReLU, conv, BN, ReLU, conv) and ``bn1``; blocks ``layerS.B.{conv1,bn1,conv2,conv3,bn3}``
with the shortcut ``downsample.{0: AvgPool, 1: conv, 2: BN}``; ``SplAtConv2d`` holds ``conv``,
``bn0`` (our ``bn``), ``fc1``, ``bn1``, ``fc2``; the classifier ``fc``. Every BN is
``nn.BatchNorm2d`` (``num_batches_tracked`` included). Their dilated networks (``dilated=True``
/ ``dilation=2``) keep the stride-1 avd pool and the 1x1 shortcut pool of the first dilated
block, as their Gluon code and ours do, so the same weights compute the same features.
"""
from .names import MODULES, Layout

__all__ = ["LAYOUT", "PYTORCH_MODULES", "model_name"]

# The authors' torch names and timm's are ours but for the split-attention BN.
PYTORCH_MODULES = {ours: ours.replace("conv2.bn", "conv2.bn0") if ours.endswith("conv2.bn")
                   else ours for ours, _ in MODULES}

LAYOUT = Layout("torch", "the authors' resnest.torch", PYTORCH_MODULES)


def model_name(model):
    """The function of ``resnest.torch`` that builds our ``model`` (their names are ours;
    they have no resnest14/26 function, and their ``ResNet`` class builds those), or None."""
    if model in ("resnest50", "resnest101", "resnest200", "resnest269") or \
            model.startswith("resnest50_fast_"):
        return model
    return None
