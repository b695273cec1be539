"""Measured accuracy and measured latency of one trained model per backend and dtype, and the
chart of the one against the other: what the demo shows for its digits model.

    from tools.accuracy_latency import accuracy_latency
    rows, skipped = accuracy_latency("resnest14", "runs/.../imagenet-resnest14-11.params",
                                     "data/digits/rec/val.rec", crop_size=32,
                                     chart="runs/.../accuracy_latency.png")

Top-1 comes from :func:`resnest.gluon.inference.verify.verify` (the one evaluator over the
whole validation set, int8 calibrated on batches spread over it); latency from the same
checkpoint built by :func:`~resnest.gluon.inference.optimize` for each batch size and timed
interleaved in this process on real validation images (:mod:`tools.timing`), with the other
processes' CPU load recorded. Nothing is a published number.
"""
import os

from .timing import LoadMeter, cpu_info, summarize, time_interleaved

__all__ = ["accuracy_latency", "format_rows"]


def _accuracy(model, params, val_rec, backends, dtypes, crop_size, crop_ratio, num_workers):
    """``({(backend, dtype): verify summary}, [(label, reason)])``."""
    from resnest.gluon.inference.verify import VerifyConfig, verify
    from resnest.gluon.utils.distributed import setup_distributed
    from resnest.gluon.utils.errors import UserError
    found, skipped = {}, []
    dist = setup_distributed(num_gpus=0)
    source = {"data_dir" if os.path.isdir(val_rec) else "rec_val": val_rec}
    for backend in backends:
        for dtype in dtypes:
            cfg = VerifyConfig(model=model, weights=params, crop_size=crop_size,
                               crop_ratio=crop_ratio, batch_size=50, dtype=dtype,
                               num_workers=num_workers, progress=False, backend=backend,
                               **source)
            try:
                cfg.check()
                found[(backend, dtype)] = verify(cfg, dist)
            except UserError as err:
                skipped.append((f"{backend}:{dtype}", str(err)))
    return found, skipped


def _real_batches(val_rec, batch_size, crop_size, crop_ratio, count):
    """``count`` batches of validation images spread over the file: the timed input (the
    first) and the int8 calibration data."""
    from resnest.gluon.data import eval_loader, eval_transform
    from resnest.gluon.inference import spread_batches
    loader = eval_loader(val_rec, batch_size, eval_transform(None, crop_size, crop_ratio),
                         num_workers=0)
    return [b[0] for b in spread_batches(loader, count)]


def _latency(model, params, keys, val_rec, batch_size, crop_size, crop_ratio, rounds):
    """Timings per ``(backend, dtype)`` of ``keys`` at ``batch_size``, and the load."""
    from resnest.gluon.inference import optimize
    from resnest.gluon.inference.load import load_model
    batches = _real_batches(val_rec, batch_size, crop_size, crop_ratio, 4)
    fns = {}
    for backend, dtype in keys:
        net = load_model(model, params).net
        fns[(backend, dtype)] = optimize(net, dtype, backend=backend, calib_data=batches,
                                         input_size=crop_size, batch_size=batch_size)
    inputs = {k: batches[0] if k[0] == "mxnet" else batches[0].asnumpy() for k in keys}
    with LoadMeter() as load:
        times = time_interleaved(fns, inputs, rounds=rounds, runs_per_round=1, warmup=3,
                                 shuffle=True, gap=0.05)
    return {k: summarize(t, batch_size) for k, t in times.items()}, load


def accuracy_latency(model, params, val_rec, backends=("mxnet", "onnxruntime", "openvino"),
                     dtypes=("float32", "bfloat16", "int8"), crop_size=32, crop_ratio=1.0,
                     batch_sizes=(1, 16), rounds=50, num_workers=1, chart=None):
    """Rows of measured top-1 and latency per backend x dtype x batch size of a checkpoint.

    Parameters
    ----------
    model, params : str
        Registered model name and the checkpoint (``.params``, the JSON beside it optional).
    val_rec : str
        Labelled validation data (a ``.rec`` with its ``.idx``, or a class-folder tree).
    backends, dtypes : sequence of str
        Combinations that cannot run here (not installed, not supported) are skipped.
    crop_size, crop_ratio : int, float
        Evaluation preprocessing (the digits demo: 32, 1.0).
    batch_sizes, rounds : sequence of int, int
        Latency is timed at each batch size, ``rounds`` interleaved calls per candidate.
    chart : str, optional
        Also draw top-1 against latency per image to this PNG
        (:func:`tools.inference_bench.draw_chart`).

    Returns
    -------
    (list of dict, list of (str, str))
        One row per backend x dtype x batch size (``top1``, ``images``, ``median_ms``,
        ``p99_ms``, ``ms_per_image``, ``other_cores``, ``noisy``, ``cpu``), and the skipped
        combinations with the reason.
    """
    accuracy, skipped = _accuracy(model, params, val_rec, backends, dtypes, crop_size,
                                  crop_ratio, num_workers)
    cpu = cpu_info()
    rows = []
    for batch_size in batch_sizes:
        timings, load = _latency(model, params, list(accuracy), val_rec, batch_size,
                                 crop_size, crop_ratio, rounds)
        for (backend, dtype), timing in timings.items():
            summary = accuracy[(backend, dtype)]
            rows.append(dict(model=model, impl="ours", backend=backend, dtype=dtype,
                             top1=summary["top1"], images=summary["images"],
                             ms_per_image=round(timing.median_ms / batch_size, 3),
                             **timing.as_dict(), **load.as_dict(), cpu=cpu["model"],
                             isa=cpu["isa"]))
    if chart:
        from .inference_bench import draw_chart
        draw_chart(rows, chart, {(model, k[0], k[1]): v["top1"] for k, v in accuracy.items()},
                   title=f"{model}: measured top-1 vs latency ({len(rows) and rows[0]['images']}"
                         " held-out images)")
    return rows, skipped


def format_rows(rows):
    """The rows as report lines: backend, dtype, batch, top-1, median and p99 ms."""
    lines = [f"  {'backend':12s} {'dtype':9s} {'batch':>5s} {'top-1':>7s} {'median ms':>10s} "
             f"{'p99 ms':>8s} {'ms/img':>8s}"]
    for r in rows:
        lines.append(f"  {r['backend']:12s} {r['dtype']:9s} {r['batch_size']:5d} "
                     f"{r['top1']:6.2f}% {r['median_ms']:10.2f} {r['p99_ms']:8.2f} "
                     f"{r['ms_per_image']:8.3f}" + ("  (noisy)" if r["noisy"] else ""))
    return lines
