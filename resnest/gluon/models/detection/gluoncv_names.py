"""GluonCV's names for the parameters of :class:`~.faster_rcnn.FasterRCNNFPN`, and the loader of
its published files (``faster_rcnn_fpn_syncbn_resnest{50,101,269}_coco``).

GluonCV's files are keyed by MXNet prefix names where its FPN is a SymbolBlock, and by
structure elsewhere. The map is derived from our network's structure:

- ``features.{prefix}...``: the backbone, named by GluonCV's name scopes. Its ResNeSt builds
  every layer of a stage's blocks in the stage's scope (``{prefix}layers{i}_``) without scopes
  of their own, so the layers share one counter per kind and stage: per block, in creation
  order, conv1, bn1, the split-attention conv, bn, fc1, bn1, fc2, then conv3, bn3 (5 convs,
  4 norms a block). The stem uses the model scope (``{prefix}conv0..2``, norms 0..2), a stage's
  shortcut its own (``{prefix}down{i}_conv0``, norm 0). The norm kind is the class name in
  lower case (``syncbatchnorm`` in the published files).
- ``features.P{k}_...``: the pyramid's symbol names (``P{k}_conv_lat``, ``P5_lat_bn`` /
  ``P{k}_conv1_bn`` after the laterals, ``P{k}_conv1``, ``P{k}_bn``, ``P6_conv1``,
  ``P6_pre_bn``); BN statistics are ``moving_mean`` / ``moving_var`` there.
- ``rpn.rpn_head.{conv1.0, score, loc}``, ``box_features.{3i, 3i+1, 3n}``,
  ``class_predictor``, ``box_predictor``: structural.
- ``rpn.anchor_generator.{i}.anchors``: precomputed anchor grids, no parameter here; each is
  checked to equal what our anchor generator gives on that grid.

Loading accounts for every array both ways: a parameter without its array, an array without
its parameter (other than the anchors), a shape or an anchor grid that differs is refused in
one sentence naming them.
"""
import re
from collections import Counter

import mxnet as mx
import numpy as np
from mxnet.gluon import nn

from ...store import read_params
from ...utils.errors import UserError

__all__ = ["gluoncv_names", "anchor_names", "load_gluoncv_params"]

_STEM = ("conv1.0", "conv1.1", "conv1.3", "conv1.4", "conv1.6", "bn1")
_BLOCK = ("conv1", "bn1", "conv2.conv", "conv2.bn", "conv2.fc1", "conv2.bn1", "conv2.fc2",
          "conv3", "bn3")
_SHORTCUT = ("downsample.1", "downsample.2")
_SYMBOL_BN = {"gamma": "gamma", "beta": "beta", "running_mean": "moving_mean",
              "running_var": "moving_var"}
_ANCHORS = re.compile(r"rpn\.anchor_generator\.(\d+)\.anchors")


def _child(block, path):
    for token in path.split("."):
        block = block[int(token)] if token.isdigit() else getattr(block, token)
    return block


def _scoped(root, base, paths, scope, norm, counts):
    """Name the layers ``paths`` of ``root`` in one GluonCV name scope sharing ``counts``."""
    names = {}
    for path in paths:
        layer = _child(root, path)
        kind = "conv" if isinstance(layer, nn.Conv2D) else norm
        name = f"features.{scope}{kind}{counts[kind]}_"
        counts[kind] += 1
        for param in layer._collect_params_with_prefix():
            names[f"{base}{path}.{param}"] = name + param
    return names


def _backbone_names(trunk, norm):
    prefix = trunk.config.name_prefix
    names = _scoped(trunk, "backbone.", _STEM, prefix, norm, Counter())
    stage = 1
    while hasattr(trunk, f"layer{stage}"):
        layer = getattr(trunk, f"layer{stage}")
        counts = Counter()
        for j, block in enumerate(layer):
            base = f"backbone.layer{stage}.{j}."
            names.update(_scoped(block, base, _BLOCK, f"{prefix}layers{stage}_", norm, counts))
            if block.downsample is not None:
                names.update(_scoped(block, base, _SHORTCUT, f"{prefix}down{stage}_", norm,
                                     Counter()))
        stage += 1
    return names


def _symbol_names(conv_norm, ours, conv_name, bn_name):
    names = {f"{ours}.conv.{p}": f"features.{conv_name}_{p}"
             for p in conv_norm.conv._collect_params_with_prefix()}
    if conv_norm.bn is not None:
        names.update({f"{ours}.bn.{p}": f"features.{bn_name}_{_SYMBOL_BN[p]}"
                      for p in conv_norm.bn._collect_params_with_prefix()})
    return names


def _fpn_names(fpn):
    names, top = {}, fpn._levels[-1]
    for k in fpn._levels:
        lateral_bn = f"P{k}_lat_bn" if k == top else f"P{k}_conv1_bn"
        names.update(_symbol_names(getattr(fpn, f"lateral{k}"), f"fpn.lateral{k}",
                                   f"P{k}_conv_lat", lateral_bn))
        names.update(_symbol_names(getattr(fpn, f"output{k}"), f"fpn.output{k}",
                                   f"P{k}_conv1", f"P{k}_bn"))
    names.update(_symbol_names(fpn.p6, "fpn.p6", f"P{top + 1}_conv1", f"P{top + 1}_pre_bn"))
    return names


def _structural(block, ours, theirs):
    return {f"{ours}.{p}": f"{theirs}.{p}" for p in block._collect_params_with_prefix()}


def _head_names(net):
    names = {}
    for ours, theirs in (("rpn.head.conv", "rpn.rpn_head.conv1.0"),
                         ("rpn.head.score", "rpn.rpn_head.score"),
                         ("rpn.head.loc", "rpn.rpn_head.loc"),
                         ("class_predictor", "class_predictor"),
                         ("box_predictor", "box_predictor")):
        names.update(_structural(_child(net, ours), ours, theirs))
    head = net.box_head
    step = 3 if head._norm else 2                  # conv, norm, ReLU / conv, ReLU
    for i in range(head._convs):
        names.update(_structural(getattr(head, f"conv{i}"), f"box_head.conv{i}",
                                 f"box_features.{step * i}"))
        if head._norm:
            names.update(_structural(getattr(head, f"bn{i}"), f"box_head.bn{i}",
                                     f"box_features.{step * i + 1}"))
    names.update(_structural(head.fc, "box_head.fc", f"box_features.{step * head._convs}"))
    return names


def gluoncv_names(net, norm="syncbatchnorm"):
    """``{our structural name: GluonCV's name}`` for every parameter of ``net`` (a
    :class:`~.faster_rcnn.FasterRCNNFPN`); ``norm`` is the norm kind in GluonCV's backbone
    names (its norm class in lower case)."""
    names = _backbone_names(net.backbone, norm)
    names.update(_fpn_names(net.fpn))
    names.update(_head_names(net))
    return names


def anchor_names(net):
    """GluonCV's names of the anchor grids of ``net``'s levels, lowest first."""
    return [f"rpn.anchor_generator.{i}.anchors" for i in range(len(net.rpn.anchor_grids))]


def _listing(names, limit=6):
    names = sorted(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _norm_kind(arrays, prefix):
    for kind in ("syncbatchnorm", "batchnorm"):
        if f"features.{prefix}{kind}0_gamma" in arrays:
            return kind
    return "syncbatchnorm"


def _bad_anchors(net, arrays):
    """Names of the stored anchor grids that differ from ours (or are not one of ours)."""
    bad, grids = [], dict(zip(anchor_names(net), net.rpn.anchor_grids))
    for name in (k for k in arrays if _ANCHORS.fullmatch(k)):
        stored = arrays[name].asnumpy()
        if name not in grids or stored.ndim != 5:
            bad.append(name)
            continue
        ours = grids[name](mx.nd.zeros((1, 1) + stored.shape[2:4], dtype=stored.dtype))
        if not np.array_equal(ours.asnumpy().reshape(stored.shape), stored):
            bad.append(name)
    return bad


def _mismatch(net, arrays, names, skip):
    """The parts of the sentence saying what does not map (empty when everything does)."""
    params = net._collect_params_with_prefix()
    wanted = {o: t for o, t in names.items() if not o.startswith(skip)}
    used = set(names.values()) | {k for k in arrays if _ANCHORS.fullmatch(k)}
    parts = []
    unnamed = [o for o in params if o not in names]
    missing = [t for t in wanted.values() if t not in arrays]
    extra = [k for k in arrays if k not in used]
    shapes = [f"{t} {arrays[t].shape} for {o} {params[o].shape}" for o, t in wanted.items()
              if t in arrays and tuple(arrays[t].shape) != tuple(params[o].shape)]
    anchors = _bad_anchors(net, arrays)
    for items, what in ((unnamed, "parameters of the model have no GluonCV name"),
                        (missing, "parameters of the model have no array in the file"),
                        (extra, "arrays of the file belong to no parameter"),
                        (shapes, "arrays have another shape"),
                        (anchors, "stored anchor grids differ from the model's anchors")):
        if items:
            parts.append(f"{len(items)} {what} ({_listing(items)})")
    return parts


def load_gluoncv_params(net, path, ctx=None, fresh=(), name=None):
    """Load GluonCV's file ``path`` of a Faster R-CNN FPN ResNeSt into ``net`` through
    :func:`gluoncv_names`, every array accounted for both ways.

    ``fresh`` are prefixes of our parameters that do not come from the file (e.g.
    ``('class_predictor.', 'box_predictor.')`` for the user's own classes): their arrays in
    the file are deliberately unused and they are initialised afresh. ``name`` (the model)
    is only used in the message.

    Raises
    ------
    UserError
        The file is unreadable, or does not map one to one onto ``net``.
    """
    arrays = read_params(path)
    names = gluoncv_names(net, _norm_kind(arrays, net.backbone.config.name_prefix))
    skip = tuple(fresh)
    parts = _mismatch(net, arrays, names, skip)
    if parts:
        raise UserError(f"weights file {path} does not fit {name or net.name} through "
                        f"GluonCV's names: {'; '.join(parts)}.")
    ctx = ctx or mx.cpu()
    for ours, param in net._collect_params_with_prefix().items():
        if ours.startswith(skip):
            param.initialize(ctx=ctx, force_reinit=True)
        else:
            param._load_init(arrays[names[ours]].astype(param.dtype), ctx)
    return net
