"""The inference benchmark behind ``scripts/gluon/benchmark.py``: what is timed and how it is
reported.

Per model x batch size x input size, every candidate is timed model-only on one batch, in
interleaved rounds (a new random order each round) in one process, after warm-up, each call
synchronised: the authors' published Gluon model, plain hybridized float32 (the 1.00x
reference), and ours per backend (``mxnet``, ``onnxruntime``, ``openvino``) and dtype, built by
:func:`resnest.gluon.inference.optimize`. Weights are random: speed does not depend on them.
A segmentation model (``deeplab_resnest50_ade`` ...) is timed without its auxiliary head beside
GluonCV's own model of that name built for the input size (``--baseline gluoncv``; the authors
published none); ours gets GluonCV's random weights, and each row of ours says how far its
output is from GluonCV's (``max_abs_diff_vs_gluoncv``).
int8 is calibrated on real photo crops (:mod:`tools.photos`). Every row carries the CPU model,
its ISA flags and the CPU the other processes used while it was timed.
"""
from dataclasses import dataclass
import sys

import mxnet as mx

import numpy as np

from .timing import LoadMeter, cpu_info, percentile, summarize, sync_output, time_interleaved

__all__ = ["Candidate", "build_candidates", "benchmark_rows", "print_rows", "draw_chart",
           "accuracy_table"]


@dataclass
class Candidate:
    """One thing to time: ``fn(inputs)`` plus what the result row says about it."""

    impl: str              # ours, authors, gluoncv
    backend: str           # mxnet, onnxruntime, openvino
    model: str
    dtype: str
    mode: str              # optimized or plain (hybridized only)
    fn: object
    inputs: object
    diff: float = None     # segmentation: max |ours - GluonCV's| on the timed batch

    @property
    def label(self):
        return f"{self.impl}:{self.backend}:{self.model}:{self.dtype}:{self.mode}"


def _plain(net, x):
    net.hybridize(static_alloc=True, static_shape=True)
    sync_output(net(x))
    return net


def is_segmentation(model):
    """Whether ``model`` is a registered segmentation model."""
    from resnest.gluon import model_task
    try:
        return model_task(model) == "segmentation"
    except Exception:              # an unknown name: the builders below say so in one sentence
        return False


def _fresh(impl, model, classes, x, like=None):
    """``impl``'s model, initialised (with ``like``'s arrays, by name, when given) and run
    once. Segmentation models come without their auxiliary head; GluonCV's is built for the
    input size (its DeepLab pools at a fixed size)."""
    import warnings

    from resnest.gluon import get_model

    from .reference import authors_model, copy_weights, gluoncv_model
    if is_segmentation(model):
        if impl == "authors":
            raise ValueError("the authors published no Gluon segmentation model; compare with "
                             "--baseline gluoncv")
        kwargs = dict(aux=False) if impl == "ours" else dict(
            aux=False, pretrained=False, pretrained_base=False, height=x.shape[2],
            width=x.shape[3])
        if classes is not None and impl == "ours":     # GluonCV's: its data set's classes
            kwargs["classes"] = classes
    else:
        kwargs = dict(classes=classes or 1000)
    build = {"ours": get_model, "authors": authors_model, "gluoncv": gluoncv_model}[impl]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                  # GluonCV's init / BN warnings
        net = build(model, **kwargs)
        net.initialize(mx.init.Xavier(), ctx=x.context)  # on the GPU with --num-gpus
    sync_output(net(x[:1]))
    if like is not None:
        copy_weights(like, net)
    return net


def _max_diff(theirs, ours):
    """Largest absolute difference of the main outputs of two models (NDArrays or numpy)."""
    a, b = [np.asarray(o.asnumpy() if hasattr(o, "asnumpy") else o, np.float64) for o in
            (o[0] if isinstance(o, (list, tuple)) else o for o in (theirs, ours))]
    return float(np.abs(a - b).max())


def _calibration(input_size, count=16):
    """One batch of real photo crops at ``input_size`` for int8 calibration."""
    from .photos import calibration_patches
    return [mx.nd.array(calibration_patches(count, input_size))]


def _baselines(baselines, model, classes, x):
    from resnest.gluon import UserError
    found, skipped = [], []
    for impl in baselines:
        names = ["resnest50", "resnet50_v1d"] if impl == "gluoncv" and model == "resnest50" \
            else [model]
        for name in names:
            try:
                net = _plain(_fresh(impl, name, classes, x), x)
                found.append(Candidate(impl, "mxnet", name, "float32", "plain", net, x))
            except (UserError, ValueError) as err:
                skipped.append((f"{impl}:{name}", str(err)))
    return found, skipped


def build_candidates(model, batch_size, input_size, dtypes=("float32",), backends=("mxnet",),
                     plain=False, baselines=("authors",), classes=1000, ctx=None):
    """The :class:`Candidate` list for one model x batch size x input size.

    ``baselines`` names implementations timed plain float32 beside ours: ``'authors'`` (their
    published Gluon model), ``'gluoncv'`` (GluonCV's resnest50 and resnet50_v1d). A backend x
    dtype that cannot run here (not installed, not supported by the backend or the CPU) is
    skipped. Returns ``(candidates, skipped)`` where skipped lists ``(label, reason)``.
    """
    from resnest.gluon import UserError
    from resnest.gluon.inference import optimize
    ctx = ctx or mx.cpu()
    x = mx.nd.random.uniform(-2, 2, shape=(batch_size, 3, input_size, input_size), ctx=ctx)
    found, skipped = _baselines(baselines, model, classes, x)
    like = next((c.fn for c in found if c.impl == "gluoncv"), None) \
        if is_segmentation(model) else None
    reference = sync_output(like(x)) if like is not None else None
    if plain:
        net = _plain(_fresh("ours", model, classes, x, like), x)
        found.append(Candidate("ours", "mxnet", model, "float32", "plain", net, x,
                               None if like is None else _max_diff(reference, net(x))))
    calib = _calibration(input_size) if "int8" in dtypes else None
    for backend in backends:
        for dtype in dtypes:
            try:
                net = optimize(_fresh("ours", model, classes, x, like), dtype, backend=backend,
                               ctx=ctx, calib_data=calib if dtype == "int8" else None,
                               input_size=input_size, batch_size=batch_size,
                               calib_mode="naive")
            except UserError as err:
                skipped.append((f"ours:{backend}:{model}:{dtype}", str(err)))
                continue
            inputs = x if backend == "mxnet" else x.asnumpy()
            found.append(Candidate("ours", backend, model, dtype, "optimized", net, inputs,
                                   None if like is None else _max_diff(reference, net(inputs))))
    return found, skipped


def _size(model, input_size, classes):
    from resnest.gluon import get_model
    from resnest.gluon.flops import count_macs, count_params
    kwargs = dict(aux=False) if is_segmentation(model) else dict(classes=classes or 1000)
    if classes is not None:
        kwargs["classes"] = classes
    net = get_model(model, **kwargs)
    net.initialize()
    net(mx.nd.zeros((1, 3, 64, 64)))
    return count_params(net) / 1e6, 2 * count_macs(net, input_size) / 1e9


def _speedups(rows, times, found):
    """``speedup_vs_<impl>_<model>`` (ratio of medians) and ``paired_speedup_vs_...`` (median
    of the per-round ratios: each pair ran next to each other in time) against each baseline."""
    labels = [c.label for c in found]
    for base, base_label in [(r, lbl) for r, lbl in zip(rows, labels)
                             if r["impl"] in ("authors", "gluoncv")]:
        key = f"vs_{base['impl']}_{base['model']}"
        for row, label in zip(rows, labels):
            row["speedup_" + key] = round(row["images_per_s"] / base["images_per_s"], 3)
            pairs = [b / t for b, t in zip(times[base_label], times[label])]
            row["paired_speedup_" + key] = round(percentile(pairs, 50), 3)


def benchmark_rows(args, model, batch_size, input_size, ctx, threads):
    """Time every candidate of one model x batch x input size; rows of results."""
    found, skipped = build_candidates(model, batch_size, input_size, args.dtypes, args.backends,
                                      args.plain, args.baseline, args.classes, ctx)
    for label, reason in skipped:
        print(f"skipped {label}: {reason}", file=sys.stderr)
    rounds = args.rounds or (50 if batch_size <= 2 else 10)
    with LoadMeter() as load:
        times = time_interleaved({c.label: c.fn for c in found},
                                 {c.label: c.inputs for c in found}, rounds=rounds,
                                 runs_per_round=args.runs, warmup=args.warmup, shuffle=True,
                                 gap=args.gap)
    params_m, gflops = _size(model, input_size, args.classes)
    cpu = cpu_info()
    rows = []
    for c in found:
        row = dict(model=c.model, impl=c.impl, backend=c.backend, dtype=c.dtype, mode=c.mode,
                   input_size=input_size, threads=threads,
                   **summarize(times[c.label], batch_size).as_dict())
        if c.impl == "ours":
            row.update(params_m=round(params_m, 4), gflops=round(gflops, 4))
        if c.diff is not None:
            row["max_abs_diff_vs_gluoncv"] = c.diff
        row.update(load.as_dict(), cpu=cpu["model"], isa=cpu["isa"])
        rows.append(row)
    _speedups(rows, times, found)
    return rows


def print_rows(rows):
    """The rows as a table, with the machine and the load line under it."""
    width = max([14] + [len(r['model']) + 1 for r in rows])
    print(f"{'impl':8s}{'backend':12s}{'model':{width}s}{'dtype':9s}{'mode':10s}{'size':>5s}"
          f"{'batch':>6s}{'median':>9s}{'p99':>9s}{'img/s':>8s}  speed-up (paired)")
    for r in rows:
        ups = " ".join(f"{k[11:]}={v:.2f}x ({r['paired_' + k]:.2f}x)" for k, v in r.items()
                       if k.startswith("speedup_vs_"))
        print(f"{r['impl']:8s}{r['backend']:12s}{r['model']:{width}s}{r['dtype']:9s}{r['mode']:10s}"
              f"{r['input_size']:5d}{r['batch_size']:6d}{r['median_ms']:9.1f}{r['p99_ms']:9.1f}"
              f"{r['images_per_s']:8.1f}  {ups}")
    if rows:
        r = rows[0]
        flags = " ".join(k for k, v in r["isa"].items() if v) or "none of the listed"
        print(f"CPU: {r['cpu']}; ISA: {flags}; other processes used {r['other_cores']} cores "
              f"(steal {r['steal_pct']}%) while timing"
              + ("  ** NOISY: absolute times are not a quiet machine's **" if r["noisy"] else ""))


def accuracy_table(results):
    """``{(model, backend, dtype): top-1 %}`` from verify.py results (dicts or JSON paths)."""
    import json
    table = {}
    for item in results:
        if isinstance(item, str):
            with open(item) as f:
                item = json.load(f)
        table[(item["model"], item.get("backend", "mxnet"), item["dtype"])] = item["top1"]
    return table


def draw_chart(rows, path, accuracy, title=None):
    """Measured top-1 (``accuracy``: :func:`accuracy_table`) against measured latency per image
    of the rows that have both; one marker shape per backend, one colour per dtype, every point
    named in the legend (no labels on the plot, so none overlap). Returns the points drawn."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    markers = {"mxnet": "o", "onnxruntime": "s", "openvino": "^"}
    colours = {"float32": "tab:blue", "bfloat16": "tab:green", "int8": "tab:red",
               "float16": "tab:purple"}
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    points = []
    for r in rows:
        top1 = accuracy.get((r["model"], r["backend"], r["dtype"])) if r["impl"] == "ours" \
            else None
        if top1 is None:
            continue
        ms = r["median_ms"] / r["batch_size"]
        label = f"{r['backend']} {r['dtype']}, batch {r['batch_size']}: {ms:.1f} ms, {top1:.1f}%"
        ax.scatter(ms, top1, marker=markers.get(r["backend"], "x"),
                   color=colours.get(r["dtype"], "black"), s=60 if r["batch_size"] > 1 else 30,
                   label=label, alpha=0.85)
        points.append((ms, top1, label))
    if points and max(p[0] for p in points) > 10 * min(p[0] for p in points):
        ax.set_xscale("log")                        # batch 1 and batch 16 differ by 10x
    ax.set_xlabel("latency per image (ms, median; this CPU)")
    ax.set_ylabel("top-1 (%) measured by verify.py")
    ax.set_title(title or "accuracy vs latency, measured on this machine")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return points
