"""Segment images and say which classes they show: what ``scripts/gluon/segment.py`` runs.

The model is a published segmentation model (ADE20K's 150 classes) or a checkpoint (the class
names of its training data, from its record); see
:func:`~resnest.gluon.inference.load.load_segmentation_model`. Inputs follow ``predict.py``'s
rules (:func:`~resnest.gluon.data.inputs.collect_inputs`: files, folders, globs, ``.rec``); an
image that cannot be read becomes a row with an ``error`` and the run goes on. Each image is
scored by the weights' protocol (:mod:`resnest.gluon.models.segmentation.evaluation`: single
scale, or ``--multi-scale``) through :func:`~resnest.gluon.inference.optimize`, and written
to ``--out`` (:mod:`.seg_outputs`): ``<name>.png``, ``<name>.overlay.jpg`` and, at the end,
``segment.json`` with the classes present in each image and their pixel shares.
"""
import itertools
import json
import os
import sys
from dataclasses import dataclass, field
from typing import List, Optional

import mxnet as mx
import numpy as np

from ..data.inputs import ImageInputs, collect_inputs
from ..data.workers import ordered_map
from ..models.segmentation.evaluation import main_output, multi_scale, normalize, single_scale
from ..utils.config import NON_NEGATIVE, check_fields, option
from ..utils.io import write_text
from ..utils.outputs import OutputLock
from .config import InferenceConfig, SegmentInput
from .load import load_segmentation_model, segmentation_settings
from .optimize import optimize
from .seg_outputs import RESULTS, earlier_results, output_names, write_label_png, write_overlay

__all__ = ["SegmentConfig", "Segmented", "scorer", "segmentation_engine", "segment",
           "run_segment"]


@dataclass
class SegmentConfig(InferenceConfig, SegmentInput):
    """Everything ``segment.py`` asks for; see its ``--help`` for meanings."""

    inputs: List[str] = option([], "image file, folder, glob pattern or .rec",
                               flags=("inputs",), nargs="*", metavar="INPUT")
    out: str = option(None, "folder for the results (<name>.png, <name>.overlay.jpg, "
                      "segment.json)", metavar="DIR", required=True)
    force: bool = option(False, "replace the results an earlier run left in --out")
    # One image per call: images come in every size.
    batch_size: int = option(1, cli=False)
    num_workers: int = option(2, "decoding processes (0: decode in this process)",
                              flags=("-j", "--num-workers"), check=NON_NEGATIVE)

    def check(self):
        check_fields(self)


@dataclass
class Segmented:
    """The result for one image: ``classes`` holds ``(index, name, pixels, share)`` of every
    class predicted somewhere in it, the largest first; ``error`` says why it could not be
    segmented (nothing was written for it)."""

    image: str
    name: str
    height: int = 0
    width: int = 0
    classes: list = field(default_factory=list)
    error: Optional[str] = None

    def as_dict(self):
        row = {"image": self.image, "error": self.error}
        if self.error is None:
            row.update(png=self.name + ".png", overlay=self.name + ".overlay.jpg",
                       height=self.height, width=self.width,
                       classes=[{"index": i, "name": n, "pixels": p, "share": round(s, 6)}
                                for i, n, p, s in self.classes])
        return row


def scorer(settings, multi):
    """``scores(net, images)``: the single-scale protocol, or with ``multi`` GluonCV's
    multi-scale + flip with ``settings`` (one image at a time)."""
    if not multi:
        return single_scale

    def scores(net, images):
        return mx.nd.concat(*[multi_scale(net, images[i:i + 1], settings)
                              for i in range(images.shape[0])], dim=0)
    return scores


def segmentation_engine(net, cfg, settings, calib_images=None):
    """``net`` through :func:`~resnest.gluon.inference.optimize` for ``cfg``'s engine and dtype:
    for ``--multi-scale`` at the crop (every window is a crop, with its mirror image: batch 2),
    else at any image size. int8 calibrates on ``calib_images`` (normalised (1, 3, H, W)
    arrays), each resized to the crop."""
    crop = settings.crop_size
    calib = None
    if cfg.dtype == "int8":
        calib = [mx.nd.contrib.BilinearResize2D(x, height=crop, width=crop)
                 for x in calib_images or []]
    batch = 2 if cfg.multi_scale and settings.flip else 1
    return optimize(net, cfg.dtype, backend=cfg.backend, calib_data=calib, input_size=crop,
                    batch_size=batch, calib_mode=cfg.calib_mode, any_size=not cfg.multi_scale)


def _as_is(rgb):
    return rgb


def _read(dataset, position):
    return dataset[position]


def _classes_present(labels, names):
    counts = np.bincount(labels.ravel())
    total = float(labels.size)
    order = sorted(np.nonzero(counts)[0], key=lambda c: (-counts[c], c))
    return [(int(c), names[c] if names else str(int(c)), int(counts[c]), counts[c] / total)
            for c in order]


def segment(cfg, log=None, summary=None):
    """Segment ``cfg.inputs`` into ``cfg.out``; yields one :class:`Segmented` per image, in
    input order (:func:`run_segment` writes ``segment.json``). ``log`` is told which engine
    runs and why; ``summary`` (a dict), when given, receives the run's settings.

    Raises
    ------
    UserError
        Bad settings, no inputs, a missing path, an empty folder, weights of another
        architecture, or an ``--out`` that holds an earlier run's results (without
        ``--force``).
    """
    cfg.check()
    items = collect_inputs(cfg.inputs)
    names = output_names(items)
    loaded = load_segmentation_model(cfg.model, cfg.weights)
    settings = segmentation_settings(loaded, cfg.base_size, cfg.crop_size, cfg.multi_scale)
    earlier_results(cfg.out, names, cfg.force)
    decoded = (result for _, result in ordered_map(_read, ImageInputs(items, _as_is),
                                                   range(len(items)), cfg.num_workers))
    head = []                                  # int8: the first readable inputs calibrate
    while cfg.dtype == "int8" and sum(r[1] is not None for r in head) < cfg.calib_batches:
        nxt = next(decoded, None)
        if nxt is None:
            break
        head.append(nxt)
    scores, net = scorer(settings, cfg.multi_scale), None
    for position, rgb, error, _ in itertools.chain(head, decoded):
        row = Segmented(items[position].name, names[position], error=error)
        if rgb is not None:
            if net is None:
                calib = [normalize(r[1], settings) for r in head if r[1] is not None]
                net = segmentation_engine(loaded.net, cfg, settings, calib)
                if log:
                    log(f"engine: {net.chosen_backend} ({net.backend_reason})")
            labels = main_output(scores(net, normalize(rgb, settings))).argmax(axis=1)
            labels = labels[0].asnumpy().astype(np.int64)
            row.height, row.width = labels.shape
            row.classes = _classes_present(labels, loaded.class_names)
            write_label_png(os.path.join(cfg.out, row.name + ".png"), labels, loaded.classes)
            write_overlay(os.path.join(cfg.out, row.name + ".overlay.jpg"), rgb, labels,
                          loaded.classes)
        yield row
    if summary is not None:
        summary.update(model=cfg.model, weights=loaded.weights, classes=loaded.class_names,
                       protocol="multi-scale" if cfg.multi_scale else "single-scale",
                       dtype=cfg.dtype, backend=getattr(net, "chosen_backend", None),
                       engine=getattr(net, "backend_reason", None),
                       base_size=settings.base_size, crop_size=settings.crop_size)


def format_text(row, top=5):
    """One line for people: the image and its largest classes with their shares."""
    shown = ", ".join(f"{name} {100 * share:.1f}%" for _, name, _, share in row.classes[:top])
    more = f" (+{len(row.classes) - top} more)" if len(row.classes) > top else ""
    return f"{row.image}: {len(row.classes)} classes: {shown}{more}"


def run_segment(cfg, out=None, err=None):
    """Run :func:`segment` with ``--out`` owned by this process, print a line per image (and
    one on ``err`` per image that could not be read), then write ``segment.json``. Returns
    ``(segmented, failed)`` counts."""
    out, err = out or sys.stdout, err or sys.stderr
    os.makedirs(cfg.out, exist_ok=True)
    rows = []
    with OutputLock(cfg.out, what=f"--out {cfg.out}"):
        summary = {}
        for row in segment(cfg, lambda message: print(message, file=err, flush=True), summary):
            if row.error:
                print(f"cannot segment {row.image}: {row.error}", file=err, flush=True)
            else:
                print(format_text(row), file=out, flush=True)
            rows.append(row)
        summary["images"] = [r.as_dict() for r in rows]
        write_text(os.path.join(cfg.out, RESULTS), json.dumps(summary, indent=1) + "\n")
    failed = sum(r.error is not None for r in rows)
    if failed:
        print(f"{len(rows) - failed} of {len(rows)} images segmented; {failed} could not be "
              "read (listed above).", file=err)
    return len(rows) - failed, failed
