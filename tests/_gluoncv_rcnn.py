"""GluonCV's own Faster R-CNN FPN ResNeSt models as references for the detection tests.

``gluoncv_detector(depth)`` is GluonCV's ``faster_rcnn_fpn_syncbn_resnest{depth}_coco`` built by
GluonCV's ``get_model`` (``pretrained=False, pretrained_base=False``). Two things have to be
set for it to compute what its published weights compute, on a CPU:

- Its box decoders run GluonCV's formula (``minimal_opset=True``), as ``get_faster_rcnn`` builds
  them whenever it loads published weights (``minimal_opset=pretrained``); without weights it
  uses ``contrib.box_decode``, whose ``amp_multicast`` has no float64 oneDNN kernel.
- ``reference_mode()`` hides ``contrib.box_encode`` while it runs, which sends GluonCV's
  ``_pyramid_roi_feats`` down its own other branch (pool every region at every level, then
  zero the foreign ones). Its default branch gives foreign regions batch index -1, and MXNet
  1.9's CPU ROIAlign leaves those outputs uninitialised (``roi_align.cc`` writes one zero per
  region), so GluonCV's CPU results then depend on stale memory; the GPU kernel writes zeros,
  i.e. the values of the branch used here.

For float64, ``gluoncv_detector(depth, float64=True)`` also builds it with BatchNorm in place of
SyncBatchNorm (same inference arithmetic and parameter names; the ``contrib.SyncBatchNorm`` op
has no float64 CPU kernel) and ``reference_mode(float64=True)`` makes two of GluonCV's
hard-coded float32 casts (``BBoxClipToImage``, ``F.arange``) follow the data type. No other
line of GluonCV changes.
"""
import contextlib

import mxnet as mx
import numpy as np
from mxnet.gluon import nn


class _BatchNormNamedSync(nn.BatchNorm):
    """nn.BatchNorm under SyncBatchNorm's class name (so its prefix names are the same)."""

    def __init__(self, num_devices=None, **kwargs):
        super().__init__(**kwargs)


_BatchNormNamedSync.__name__ = "SyncBatchNorm"


def _symbol_batchnorm(data, key=None, name=None, ndev=None, **kwargs):
    # mx.sym.contrib.SyncBatchNorm's defaults: eps 1e-3, momentum 0.9, fix_gamma True.
    return mx.sym.BatchNorm(data, name=name, eps=1e-3, momentum=0.9, fix_gamma=True)


@contextlib.contextmanager
def _swapped(changes):
    saved = []
    for obj, name, value in changes:
        saved.append((obj, name, obj.__dict__.get(name, _MISSING)))
        if value is _MISSING:
            delattr(obj, name)
        else:
            setattr(obj, name, value)
    try:
        yield
    finally:
        for obj, name, value in reversed(saved):
            if value is _MISSING:
                if name in obj.__dict__:
                    delattr(obj, name)
            else:
                setattr(obj, name, value)


_MISSING = object()


def gluoncv_detector(depth, float64=False, **kwargs):
    """GluonCV's ``faster_rcnn_fpn_syncbn_resnest{depth}_coco`` (not initialised)."""
    from gluoncv.model_zoo import get_model
    import gluoncv.nn.feature as feature
    from gluoncv.model_zoo.rcnn.faster_rcnn import predefined_models
    changes = [(predefined_models, "SyncBatchNorm", _BatchNormNamedSync),
               (feature, "SyncBatchNorm", _symbol_batchnorm),
               (mx.sym.contrib, "SyncBatchNorm", _symbol_batchnorm)] if float64 else []
    with _swapped(changes):
        net = get_model(f"faster_rcnn_fpn_syncbn_resnest{depth}_coco", pretrained=False,
                        pretrained_base=False, **kwargs)
    net.box_decoder._minimal_opset = True
    net.rpn.region_proposer._box_decoder._minimal_opset = True
    return net


def set_proposals(net, count):
    """GluonCV's ``rpn_test_post_nms`` after construction (the builder fixes it at 1000)."""
    net._rpn_test_post_nms = count
    net.rpn._test_post_nms = count


@contextlib.contextmanager
def reference_mode(float64=False):
    """Run GluonCV's detector as its published path computes (see the module docstring)."""
    import gluoncv.nn.bbox as bbox
    changes = [(mod, "box_encode", _MISSING) for mod in (mx.nd.contrib, mx.sym.contrib)
               if "box_encode" in mod.__dict__]
    if float64:
        arange = mx.nd.arange

        def arange_like_data(*args, **kw):
            return arange(*args, **{**kw, "dtype": kw.get("dtype") or "float64"})

        def clip(self, F, x, img):        # BBoxClipToImage, casting to x's dtype
            window = F.shape_array(img).slice_axis(axis=0, begin=2, end=None).expand_dims(0)
            m = F.tile(F.reverse(window, axis=1), reps=(2,)).reshape((0, -4, 1, -1))
            return F.broadcast_minimum(F.maximum(x, 0.0), F.cast(m, dtype=x.dtype))
        changes += [(mx.nd, "arange", arange_like_data),
                    (bbox.BBoxClipToImage, "hybrid_forward", clip)]
    with _swapped(changes):
        yield


def randomize(net, seed=0):
    """Deterministic random weights that give varied detections (MXNet's seeded generator):
    GluonCV's initialisers (its default uniform where it names none), random BN affine and
    statistics and random biases, box deltas x10 so that the box decoding matters."""
    mx.random.seed(seed)
    params = net._collect_params_with_prefix()
    for name, shape in gluoncv_manifest(net).items():      # no deferred initialisation
        params[name].shape = shape
    net.initialize()
    ranges = {"gamma": (0.5, 1.5), "beta": (-0.2, 0.2), "running_mean": (-0.2, 0.2),
              "moving_mean": (-0.2, 0.2), "running_var": (0.5, 1.5), "moving_var": (0.5, 1.5),
              "bias": (-0.1, 0.1)}
    for name, param in sorted(params.items()):
        kind = next((k for k in ranges if name.endswith(k)), None)
        if kind is not None:
            param.set_data(mx.nd.random.uniform(*ranges[kind], shape=param.shape))
    net.box_predictor.weight.set_data(net.box_predictor.weight.data() * 10)
    return net


def gluoncv_manifest(net, size=(256, 256)):
    """``{structural name: shape}`` of every parameter of GluonCV's detector, its shapes
    inferred symbolically (nothing is allocated)."""
    out = net(mx.sym.var("data"))
    graph = mx.sym.Group(list(out))
    arg_shapes, _, aux_shapes = graph.infer_shape(data=(1, 3) + tuple(size))
    shapes = dict(zip(graph.list_arguments(), arg_shapes))
    shapes.update(zip(graph.list_auxiliary_states(), aux_shapes))
    manifest = {}
    for name, param in net._collect_params_with_prefix().items():
        manifest[name] = tuple(param.shape) if param.name not in shapes else shapes[param.name]
    return manifest


def valid_rows(dets):
    """``(ids, scores, boxes)`` of the kept detections of image 0 of ``(ids, scores, boxes)``."""
    ids, scores, boxes = [np.asarray(a.asnumpy() if hasattr(a, "asnumpy") else a)[0]
                          for a in dets]
    keep = ids[:, 0] >= 0
    return ids[keep, 0], scores[keep, 0], boxes[keep]


def match_detections(ours, theirs, box_atol, score_atol, loose_score=None, max_unpaired=0):
    """Pair every kept detection of ``ours`` with one of ``theirs``: same class, score within
    ``score_atol``, every box coordinate within ``box_atol``, closest box first (NMS may order
    near-ties differently). Detections scoring within ``loose_score`` = (threshold, width) of
    the score threshold may go unpaired, and ``max_unpaired`` others on each side. Returns
    the number of pairs."""
    oi, os_, ob = valid_rows(ours)
    ti, ts, tb = valid_rows(theirs)
    used = np.zeros(len(ti), dtype=bool)
    pairs, unpaired = 0, []
    for c, s, b in zip(oi, os_, ob):
        dist = np.abs(tb - b).max(axis=1) if len(tb) else np.zeros(0)
        ok = (ti == c) & ~used & (np.abs(ts - s) <= score_atol) & (dist <= box_atol)
        if ok.any():
            used[np.flatnonzero(ok)[np.argmin(dist[ok])]] = True
            pairs += 1
        else:
            unpaired.append((c, s))
    left = [(c, s) for c, s, u in zip(ti, ts, used) if not u]
    for side in (unpaired, left):
        far = [(c, s) for c, s in side
               if loose_score is None or abs(s - loose_score[0]) > loose_score[1]]
        assert len(far) <= max_unpaired, (
            f"{len(far)} detections without a counterpart (at most {max_unpaired}), e.g. "
            f"class {far[0][0]} score {far[0][1]}; {len(unpaired)} of ours and {len(left)} "
            f"of theirs unpaired")
    return pairs
