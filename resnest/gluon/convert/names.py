"""Parameter names: ours, and how a layout renames them.

Our names are the structural names of the published ``.params`` files (see
:mod:`resnest.gluon.models.resnet`). Every array belongs to a module (a conv, a BN, the
classifier); a layout renames modules by templates and, being PyTorch, renames the BN arrays
(``gamma``/``beta`` -> ``weight``/``bias``) and may add BN's ``num_batches_tracked`` counter.
Nothing is reshaped or permuted: convolution weights are OIHW and the classifier (out, in) in
MXNet and PyTorch alike, and the split-attention layers order their channels the same way.

Templates hold ``{s}`` (stage 1..4), ``{S}`` (stage + 1, Detectron2's ``res2..res5``) and
``{b}`` (block index); the same table maps both ways.
"""
import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

__all__ = ["MODULES", "TORCH_BN", "COUNTER", "Layout", "describe", "mismatch"]

# Our modules and what they hold: conv (weight), biased conv / dense (weight, bias), bn.
MODULES = (
    ("conv1.0", "conv"), ("conv1.1", "bn"), ("conv1.3", "conv"), ("conv1.4", "bn"),
    ("conv1.6", "conv"), ("bn1", "bn"),
    ("layer{s}.{b}.conv1", "conv"), ("layer{s}.{b}.bn1", "bn"),
    ("layer{s}.{b}.conv2.conv", "conv"), ("layer{s}.{b}.conv2.bn", "bn"),
    ("layer{s}.{b}.conv2.fc1", "biased"), ("layer{s}.{b}.conv2.bn1", "bn"),
    ("layer{s}.{b}.conv2.fc2", "biased"),
    ("layer{s}.{b}.conv3", "conv"), ("layer{s}.{b}.bn3", "bn"),
    ("layer{s}.{b}.downsample.1", "conv"), ("layer{s}.{b}.downsample.2", "bn"),
    ("fc", "biased"),
)
LEAVES = {"conv": ("weight",), "biased": ("weight", "bias"),
          "bn": ("gamma", "beta", "running_mean", "running_var")}
TORCH_BN = {"gamma": "weight", "beta": "bias", "running_mean": "running_mean",
            "running_var": "running_var"}
COUNTER = "num_batches_tracked"
_FIELDS = {"s": r"(?P<s>[1-4])", "S": r"(?P<S>[2-5])", "b": r"(?P<b>\d+)"}


def _pattern(template):
    parts = re.split(r"(\{[sSb]\})", template)
    body = "".join(_FIELDS[p[1]] if p in ("{s}", "{S}", "{b}") else re.escape(p)
                   for p in parts)
    return re.compile(f"^{body}$")


def _fill(template, match):
    groups = match.groupdict()
    stage = int(groups["s"]) if groups.get("s") else int(groups.get("S") or 1) - 1
    return template.format(s=stage, S=stage + 1, b=groups.get("b"))


@dataclass(frozen=True)
class Layout:
    """How one implementation names our modules.

    ``modules`` maps our module templates to theirs (a module missing from it does not exist
    in that layout, e.g. the classifier of a detection backbone); ``counter`` says whether
    their BN layers carry ``num_batches_tracked``.
    """

    name: str
    title: str
    modules: Dict[str, str]
    counter: bool = True
    _rules: Tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self):
        rules = tuple((_pattern(ours), ours, _pattern(theirs), theirs, kind)
                      for ours, kind in MODULES
                      for theirs in [self.modules.get(ours)] if theirs is not None)
        object.__setattr__(self, "_rules", rules)

    def _module(self, module, forward):
        for ours_re, ours, theirs_re, theirs, kind in self._rules:
            m = (ours_re if forward else theirs_re).match(module)
            if m:
                return _fill(theirs if forward else ours, m), kind
        return None, None

    def from_ours(self, name) -> Optional[str]:
        """Their name of our array ``name``, or None when the layout has no such array."""
        module, _, leaf = name.rpartition(".")
        theirs, kind = self._module(module, True)
        if theirs is None or leaf not in LEAVES[kind]:
            return None
        return f"{theirs}.{TORCH_BN[leaf] if kind == 'bn' else leaf}"

    def to_ours(self, name) -> Optional[str]:
        """Our name of their array ``name``; ``''`` for a BN counter (dropped), None when
        the name is not one of this layout's."""
        module, _, leaf = name.rpartition(".")
        ours, kind = self._module(module, False)
        if ours is None:
            return None
        if kind == "bn":
            if leaf == COUNTER:
                return ""
            back = {v: k for k, v in TORCH_BN.items()}
            return f"{ours}.{back[leaf]}" if leaf in back else None
        return f"{ours}.{leaf}" if leaf in LEAVES[kind] else None


def describe(arrays):
    """The architecture visible in our arrays (name -> array of that shape): block counts,
    stem width, stage widths, radix, cardinality, bottleneck width and classes (None without
    a classifier). Values are None when the arrays do not show them."""
    shapes = {k: tuple(getattr(v, "shape", v)) for k, v in arrays.items()}
    blocks = []
    for s in range(1, 5):
        idx = {int(k.split(".")[1]) for k in shapes if k.startswith(f"layer{s}.")}
        blocks.append(max(idx) + 1 if idx else 0)
    first = {s: f"layer{s}.0." for s in range(1, 5)}
    try:
        width = shapes[first[1] + "conv1.weight"][0]
        inter_in = shapes[first[1] + "conv2.fc1.weight"][1]
        split = shapes[first[1] + "conv2.conv.weight"][0]
        channels = tuple(shapes[first[s] + "conv3.weight"][0] // 4 for s in range(1, 5))
        cardinality = width // inter_in
        info = dict(stem_width=shapes["conv1.0.weight"][0], channels=channels,
                    radix=split // width, cardinality=cardinality,
                    bottleneck_width=width * 64 // (channels[0] * cardinality))
    except (KeyError, IndexError, ZeroDivisionError):
        info = dict(stem_width=None, channels=None, radix=None, cardinality=None,
                    bottleneck_width=None)
    classes = shapes.get("fc.bias", (None,))[0]
    return dict(layers=tuple(blocks), classes=classes, **info)


def mismatch(expected, arrays):
    """How ``arrays`` (name -> array) differ from a model's ``expected`` shapes (name ->
    shape, None when not yet known): ``(phrases, names of another shape)``; no phrase when
    every name and shape fits. The weights store and the converter report with it."""
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    shapes = sorted(k for k in set(expected) & set(arrays)
                    if expected[k] is not None and tuple(arrays[k].shape) != expected[k])
    detail = []
    if missing:
        detail.append(f"{len(missing)} parameters missing (e.g. {missing[0]})")
    if extra:
        detail.append(f"{len(extra)} unknown (e.g. {extra[0]})")
    if shapes:
        k = shapes[0]
        detail.append(f"{len(shapes)} of other shape (e.g. {k}: {tuple(arrays[k].shape)} in "
                      f"the file, {expected[k]} in the model)")
    return detail, shapes
