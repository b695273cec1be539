"""MMDetection's ``ResNeSt`` backbone (``mmdet/models/backbones/resnest.py`` on ``ResNetV1d``,
``mmdet/models/layers/res_layer.py``).

Names: the deep stem is one Sequential ``stem.{0: conv, 1: BN, 3: conv, 4: BN, 6: conv, 7: BN}``
(``stem.7`` is our ``bn1``); blocks ``layerS.B.{conv1,bn1,conv3,bn3}``; its
``SplitAttentionConv2d`` holds ``conv``, ``bn0`` (``build_norm_layer(..., postfix=0)``),
``fc1``, ``bn1``, ``fc2``; the shortcut ``downsample.{0: AvgPool, 1: conv, 2: BN}`` (with
``avg_down`` the pool is there even at stride 1). BN layers are ``nn.BatchNorm2d``. The
backbone has no classifier.

What MMDetection can build: ``depth`` 50, 101, 152 or 200 (its ``arch_settings``; no 14, 26
or 269), ``stem_channels`` = 2 x our stem width, ``radix``, ``groups`` = cardinality,
``base_width`` = bottleneck width, ``reduction_factor=4``, ``avg_down_stride=True`` (the avd
pool after the split-attention conv; no ``avd_first``). A ``.pth`` is written as
``{"state_dict": ..., "meta": ...}``, the layout ``mmengine``'s ``load_checkpoint`` reads.
"""
from .names import Layout
from .torch import PYTORCH_MODULES

__all__ = ["LAYOUT", "unsupported", "DEPTHS"]

_STEM = {"conv1.0": "stem.0", "conv1.1": "stem.1", "conv1.3": "stem.3", "conv1.4": "stem.4",
         "conv1.6": "stem.6", "bn1": "stem.7"}
LAYOUT = Layout("mmdet", "MMDetection", {
    ours: _STEM.get(ours, theirs) for ours, theirs in PYTORCH_MODULES.items() if ours != "fc"})

DEPTHS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152, (3, 24, 36, 3): 200}


def unsupported(arch, avd_first):
    """What of the architecture ``arch`` (:func:`.names.describe`) MMDetection cannot build,
    as phrases (empty when it can)."""
    problems = []
    if arch["layers"] not in DEPTHS:
        problems.append(f"blocks {arch['layers']} (MMDetection builds depths 50, 101, 152, 200)")
    if avd_first:
        problems.append("the avd pool before the split-attention conv (MMDetection has it after)")
    if arch["channels"] not in (None, (64, 128, 256, 512)):
        problems.append(f"stage widths {arch['channels']}")
    return problems
