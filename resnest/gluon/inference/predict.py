"""Classify images and name the top-k classes: what ``scripts/gluon/predict.py`` runs.

The model is the published weights (with the 1,000 ImageNet classes, as WordNet id and
readable name) or a checkpoint (with the class names of its training data, from the JSON
``train.py`` writes beside it); see :func:`~resnest.gluon.inference.load.load_model`. Images are
preprocessed as the weights were evaluated (:func:`~resnest.gluon.data.eval_transform`; for a
checkpoint, the crop it was validated with in training) and run in batches through
:func:`~resnest.gluon.inference.optimize`. An image that cannot be read or decoded becomes a
row with an ``error`` and the run goes on.
"""
import csv
import io
import itertools
import json
import sys
from dataclasses import dataclass, field
from typing import List, Optional

import mxnet as mx
import numpy as np

from ..classes import check_class_names
from ..data.classfile import read_classes
from ..data.inputs import ImageInputs, collect_inputs
from ..data.workers import ordered_map
from ..utils.config import NON_NEGATIVE, POSITIVE, check_fields, option
from ..utils.errors import UserError
from ..utils.io import write_text
from .config import ClassifyInput, InferenceConfig
from .load import classification_transform, load_model
from .optimize import optimize

__all__ = ["PredictConfig", "Prediction", "predict", "run_predict", "format_text",
           "csv_header", "csv_row"]


@dataclass
class PredictConfig(InferenceConfig, ClassifyInput):
    """Everything ``predict.py`` asks for; see its ``--help`` for meanings."""

    inputs: List[str] = option([], "image file, folder, glob pattern or .rec",
                               flags=("inputs",), nargs="*", metavar="INPUT")
    topk: int = option(5, "classes to show per image", check=POSITIVE)
    # A few images are the usual input: two decoding processes start fast.
    num_workers: int = option(2, "decoding processes (0: decode in this process)",
                              flags=("-j", "--num-workers"), check=NON_NEGATIVE)

    def check(self):
        check_fields(self)


@dataclass
class Prediction:
    """The result for one image: ``top`` holds ``(index, name, description, score)`` from the
    most likely class down (``description`` is None where the weights have none; ``score`` is
    the softmax probability); ``label`` is a record's own class name (``.rec`` inputs);
    ``error`` says why an image could not be classified (``top`` is then empty)."""

    image: str
    top: list = field(default_factory=list)
    label: Optional[str] = None
    error: Optional[str] = None

    def as_dict(self):
        """JSON-ready row."""
        return {"image": self.image, "label": self.label, "error": self.error,
                "top": [{"index": i, "name": n, "description": d, "score": round(s, 6)}
                        for i, n, d, s in self.top]}


def _record_classes(items, loaded, weights):
    """``{rec path: class names}`` of the ``.rec`` inputs; refuses a record file whose class
    list differs from the checkpoint's."""
    names = {}
    for path in dict.fromkeys(i.path for i in items if i.offset >= 0):
        names[path] = read_classes(path)
        if weights:
            check_class_names(loaded.class_names, names[path], weights, path)
    return names


def _label_name(label, names):
    if label is None:
        return None
    index = int(label)
    return names[index] if names and 0 <= index < len(names) else str(index)


def _read_batch(dataset, positions):
    return [dataset[i] for i in positions]


def _batches(dataset, items, rec_names, batch_size, workers):
    """``(failed rows, good rows, images padded to batch_size or None)`` per batch of
    ``batch_size`` items, decoded on ``workers`` processes."""
    chunks = [range(i, min(i + batch_size, len(items))) for i in range(0, len(items), batch_size)]
    for _, samples in ordered_map(_read_batch, dataset, chunks, workers):
        failed, good, images = [], [], []
        for position, image, error, label in samples:
            item = items[position]
            row = Prediction(item.name, label=_label_name(label, rec_names.get(item.path)),
                             error=error)
            (failed if image is None else good).append((position, row))
            if image is not None:
                images.append(image)
        batch = None
        if images:
            # One input shape for the tuned (and the quantized) graph: repeat the last image.
            batch = np.stack(images + images[-1:] * (batch_size - len(images)))
        yield failed, good, batch


def _calibrated(net, batches, cfg, crop, batch_size, log):
    """The int8 net calibrated on the first ``cfg.calib_batches`` batches of the inputs
    themselves; returns it with those batches, to be classified first."""
    head = []
    for batch in batches:
        head.append(batch)
        if sum(b[2] is not None for b in head) >= cfg.calib_batches:
            break
    calib = [mx.nd.array(b[2]) for b in head if b[2] is not None]
    if not calib:
        raise UserError("int8 needs images to calibrate on, and none of the inputs could be "
                        "read; use --dtype float32.")
    if log:
        log(f"int8: calibrating on {sum(len(b[1]) for b in head)} of the "
            f"input images themselves (the first {len(calib)} batch(es) of {batch_size}; "
            "--calib-batches).")
    fast = optimize(net, "int8", backend=cfg.backend, calib_data=calib, input_size=crop,
                    batch_size=batch_size, calib_mode=cfg.calib_mode)
    return fast, head


def _top(logits, count, loaded):
    """Rows of ``(index, name, description, score)`` for each row of ``logits``."""
    z = logits.astype(np.float64)
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    names, desc = loaded.class_names, loaded.descriptions
    out = []
    for p in probs:
        order = np.argsort(-p, kind="stable")[:count]
        out.append([(int(i), names[i] if names else str(int(i)), desc[i] if desc else None,
                     float(p[i])) for i in order])
    return out


def predict(cfg, log=None):
    """Classify ``cfg.inputs``; yields one :class:`Prediction` per image, in input order.

    ``log`` (a callable taking a string), when given, is told which engine runs and why, and
    how int8 was calibrated.

    Raises
    ------
    UserError
        Bad settings, no inputs, a missing path, an empty folder, a weights file of another
        architecture, or a ``.rec`` whose classes differ from the checkpoint's.
    """
    cfg.check()
    items = collect_inputs(cfg.inputs)
    loaded = load_model(cfg.model, cfg.weights)
    transform = classification_transform(loaded, cfg.crop_size, cfg.crop_ratio)
    crop = transform.settings.crop_size
    batch_size = min(cfg.batch_size, len(items))
    rec_names = _record_classes(items, loaded, cfg.weights)
    batches = _batches(ImageInputs(items, transform), items, rec_names, batch_size,
                       cfg.num_workers)
    head = []
    if cfg.dtype == "int8":
        net, head = _calibrated(loaded.net, batches, cfg, crop, batch_size, log)
    else:
        net = optimize(loaded.net, cfg.dtype, backend=cfg.backend, input_size=crop,
                       batch_size=batch_size)
    if log:                                    # int8 included: _calibrated ran optimize()
        log(f"engine: {net.chosen_backend} ({net.backend_reason})")
    count = min(cfg.topk, loaded.classes)
    for failed, good, images in itertools.chain(head, batches):
        if images is not None:
            tops = _top(net(mx.nd.array(images)).asnumpy()[:len(good)], count, loaded)
            for (_, row), top in zip(good, tops):
                row.top = top
        yield from (row for _, row in sorted(failed + good, key=lambda r: r[0]))


def format_text(pred):
    """A few lines for people: the image (and its label), then one line per class."""
    title = pred.image if pred.label is None else f"{pred.image}  (label: {pred.label})"
    lines = [title]
    for _, name, description, score in pred.top:
        lines.append(f"  {100 * score:6.2f}%  {name}" + (f"  {description}" if description
                                                           else ""))
    return "\n".join(lines)


def csv_header(topk):
    """Column names of :func:`csv_row` for ``topk`` classes."""
    cols = ["image", "label", "error"]
    for k in range(1, topk + 1):
        cols += [f"top{k}_index", f"top{k}_name", f"top{k}_description", f"top{k}_score"]
    return cols


def csv_row(pred, topk):
    """One CSV row (a list) of ``pred``, blank cells where there is nothing."""
    row = [pred.image, pred.label or "", pred.error or ""]
    for k in range(topk):
        if k < len(pred.top):
            index, name, description, score = pred.top[k]
            row += [index, name, description or "", f"{score:.6f}"]
        else:
            row += ["", "", "", ""]
    return row


def run_predict(cfg, json_path=None, csv_path=None, out=None, err=None):
    """Run :func:`predict` and report: text to ``out`` (unless a machine format goes there),
    one line on ``err`` per image that could not be classified, and the rows to ``json_path``
    and/or ``csv_path`` (``'-'`` is ``out``). Returns ``(classified, failed)`` counts."""
    out, err = out or sys.stdout, err or sys.stderr
    machine_out = "-" in (json_path, csv_path)
    preds = []
    for pred in predict(cfg, log=lambda message: print(message, file=err, flush=True)):
        if pred.error:
            print(f"cannot classify {pred.image}: {pred.error}", file=err, flush=True)
        elif not machine_out:
            print(format_text(pred), file=out, flush=True)
        preds.append(pred)
    failed = sum(p.error is not None for p in preds)
    for path, text in ((json_path, _json_text), (csv_path, _csv_text)):
        if path == "-":
            out.write(text(preds))
        elif path:
            write_text(path, text(preds))
    if failed:
        print(f"{len(preds) - failed} of {len(preds)} images classified; {failed} could not "
              "be read (listed above).", file=err)
    return len(preds) - failed, failed


def _json_text(preds):
    """A JSON list with one image per line."""
    rows = ",\n".join(json.dumps(p.as_dict(), ensure_ascii=False) for p in preds)
    return f"[\n{rows}\n]\n" if rows else "[]\n"


def _csv_text(preds):
    topk = max(len(p.top) for p in preds) if preds else 0
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(csv_header(topk))
    writer.writerows(csv_row(p, topk) for p in preds)
    return table.getvalue()
