"""The detection part of ``scripts/gluon/benchmark.py``: our Faster / Mask R-CNN FPN side by
side with GluonCV's own model holding the same weights.

GluonCV's model (the published name of ours, e.g. ``faster_rcnn_fpn_syncbn_resnest50_coco``)
is built by GluonCV and initialised at random; its ``save_parameters`` file is loaded into ours
through GluonCV's names (every array both ways, :func:`resnest.gluon.models.detection.
load_gluoncv_params`), so the two compute with the same weights. Both run MXNet float32,
hybridized, on one square batch of ``input_size`` pixels (GluonCV's COCO evaluation resizes
the short side to 800 within 1333: a square of 800 is its smallest case), timed model-only in
interleaved rounds with :func:`tools.timing.time_interleaved`; GluonCV is the 1.00x reference.
"""
import os
import sys
import tempfile

import mxnet as mx

from .inference_bench import Candidate, _speedups
from .timing import LoadMeter, cpu_info, summarize, time_interleaved

__all__ = ["detection_candidates", "detection_rows", "is_detector"]


def is_detector(model):
    """Whether ``model`` is a registered detection or instance-segmentation model."""
    from resnest.gluon.models import model_task
    try:
        return model_task(model) in ("detection", "instance-segmentation")
    except Exception:                       # unknown names are the classifier path's to refuse
        return False


def _gluoncv_name(model):
    from resnest.gluon.pretrained import PRETRAINED
    from resnest.gluon.utils.errors import UserError
    info = PRETRAINED.get(model)
    if info is None or not info.published_name:
        raise UserError(f"{model} has no GluonCV counterpart to compare with; benchmark one "
                        "of the faster_rcnn_fpn_resnest*_coco models.")
    return info.published_name


def detection_candidates(model, input_size, ctx=None):
    """``[GluonCV's model, ours]`` as plain hybridized float32 :class:`~tools.inference_bench.
    Candidate` rows on one random batch, with the same (random) weights."""
    from resnest.gluon import get_model
    from resnest.gluon.models.detection import load_gluoncv_params

    from .reference import gluoncv_model
    ctx = ctx or mx.cpu()
    name = _gluoncv_name(model)
    x = mx.nd.random.uniform(-2, 2, shape=(1, 3, input_size, input_size), ctx=ctx)
    theirs = gluoncv_model(name, pretrained=False, pretrained_base=False)
    # GluonCV decodes boxes by its own formula whenever it loads published weights
    # (get_faster_rcnn: minimal_opset=pretrained): time what its users run.
    theirs.box_decoder._minimal_opset = True
    theirs.rpn.region_proposer._box_decoder._minimal_opset = True
    theirs.initialize(ctx=ctx)
    theirs(x)
    ours = get_model(model)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "gluoncv.params")
        theirs.save_parameters(path)
        load_gluoncv_params(ours, path, ctx=ctx, name=model)
    found = []
    for impl, net, label in (("gluoncv", theirs, name), ("ours", ours, model)):
        net.hybridize(static_alloc=True)
        net(x)[0].wait_to_read()
        found.append(Candidate(impl, "mxnet", label, "float32", "plain", net, x))
    return found


def detection_rows(args, model, input_size, ctx, threads):
    """Time GluonCV's and our detector (see the module doc); rows of results."""
    if args.batch_sizes != [1]:
        print("detectors are timed at batch 1 (GluonCV's evaluation runs one image per "
              "device)", file=sys.stderr)
    found = detection_candidates(model, input_size, ctx)
    rounds = args.rounds or 20
    with LoadMeter() as load:
        times = time_interleaved({c.label: c.fn for c in found},
                                 {c.label: c.inputs for c in found}, rounds=rounds,
                                 runs_per_round=args.runs, warmup=args.warmup, shuffle=True,
                                 gap=args.gap)
    cpu = cpu_info()
    rows = []
    for c in found:
        row = dict(model=c.model, impl=c.impl, backend=c.backend, dtype=c.dtype, mode=c.mode,
                   input_size=input_size, threads=threads, task="detection",
                   **summarize(times[c.label], 1).as_dict())
        row.update(load.as_dict(), cpu=cpu["model"], isa=cpu["isa"])
        rows.append(row)
    _speedups(rows, times, found)
    # Detectors run below 1 img/s on a small CPU, where the rounded throughput would hide the
    # ratio: the speed-up here is the ratio of the median times.
    base = rows[0]
    key = f"speedup_vs_{base['impl']}_{base['model']}"
    for row in rows:
        row[key] = round(base["median_ms"] / row["median_ms"], 3)
    return rows
