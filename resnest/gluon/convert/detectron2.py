"""Detectron2's ResNeSt backbone (zhanghang1989/detectron2-ResNeSt,
``detectron2/modeling/backbone/resnet.py`` and ``splat.py``).

Names: the stem ``stem.conv1_1``, ``conv1_2``, ``conv1_3``, each a Detectron2 ``Conv2d`` with
its BN as ``.norm`` (``conv1_3.norm`` is our ``bn1``); stages ``res2..res5``; in a block
``conv1``/``conv3`` with ``.norm`` (our ``bn1``/``bn3``), the split-attention ``conv2.{conv,
bn0, fc1, bn1, fc2}`` and the shortcut conv ``shortcut`` with ``shortcut.norm`` (its pool
``shortcut_avgpool`` holds nothing). The backbone has no classifier. The default norm
(``FrozenBN``) has no ``num_batches_tracked``, so none is written.

What Detectron2 can build (``build_resnet_backbone``): depths 50, 101, 200, 269 with stem widths
32, 64, 64, 64 (its ``stem_width`` table), radix >= 2 (radix 1 builds a plain conv), the avd
pool after the split-attention conv only (no ``avd_first``), ``MODEL.RESNETS.RADIX`` set to
the radix. A ``.pth`` is written as ``{"model": ..., "__author__": ..., "matching_heuristics":
True}``: Detectron2's checkpointer then matches these backbone names to
``backbone.bottom_up.*`` by suffix, as for its own converted ImageNet weights.
"""
from .names import Layout

__all__ = ["LAYOUT", "unsupported", "STEM_WIDTHS"]

_BLOCK = {
    "layer{s}.{b}.conv1": "res{S}.{b}.conv1", "layer{s}.{b}.bn1": "res{S}.{b}.conv1.norm",
    "layer{s}.{b}.conv2.conv": "res{S}.{b}.conv2.conv",
    "layer{s}.{b}.conv2.bn": "res{S}.{b}.conv2.bn0",
    "layer{s}.{b}.conv2.fc1": "res{S}.{b}.conv2.fc1",
    "layer{s}.{b}.conv2.bn1": "res{S}.{b}.conv2.bn1",
    "layer{s}.{b}.conv2.fc2": "res{S}.{b}.conv2.fc2",
    "layer{s}.{b}.conv3": "res{S}.{b}.conv3", "layer{s}.{b}.bn3": "res{S}.{b}.conv3.norm",
    "layer{s}.{b}.downsample.1": "res{S}.{b}.shortcut",
    "layer{s}.{b}.downsample.2": "res{S}.{b}.shortcut.norm",
}
LAYOUT = Layout("detectron2", "Detectron2-ResNeSt", dict(
    {"conv1.0": "stem.conv1_1", "conv1.1": "stem.conv1_1.norm", "conv1.3": "stem.conv1_2",
     "conv1.4": "stem.conv1_2.norm", "conv1.6": "stem.conv1_3", "bn1": "stem.conv1_3.norm"},
    **_BLOCK), counter=False)

DEPTHS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 24, 36, 3): 200, (3, 30, 48, 8): 269}
STEM_WIDTHS = {50: 32, 101: 64, 200: 64, 269: 64}


def unsupported(arch, avd_first):
    """What of the architecture ``arch`` (:func:`.names.describe`) Detectron2 cannot build,
    as phrases (empty when it can)."""
    problems = []
    depth = DEPTHS.get(arch["layers"])
    if depth is None:
        problems.append(f"blocks {arch['layers']} (Detectron2 builds depths 50, 101, 200, 269)")
    elif arch["stem_width"] != STEM_WIDTHS[depth]:
        problems.append(f"stem width {arch['stem_width']} (Detectron2's depth {depth} has "
                        f"{STEM_WIDTHS[depth]})")
    if arch["radix"] is not None and arch["radix"] < 2:
        problems.append("radix 1 (Detectron2 builds a plain conv there)")
    if avd_first:
        problems.append("the avd pool before the split-attention conv (Detectron2 has it after)")
    if arch["channels"] not in (None, (64, 128, 256, 512)):
        problems.append(f"stage widths {arch['channels']}")
    return problems
