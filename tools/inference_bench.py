"""The inference benchmark behind ``scripts/gluon/benchmark.py``: what is timed and how it is
reported.

Per model x batch size x input size, every candidate is timed model-only on one batch, in
interleaved rounds (a new random order each round) in one process, after warm-up, each call
synchronised: the authors' published Gluon model, plain hybridized float32 (the 1.00x
reference), and ours per backend (``mxnet``, ``onnxruntime``, ``openvino``) and dtype, built by
:func:`resnest.gluon.inference.optimize`. Weights are random: speed does not depend on them.
int8 is calibrated on real photo crops (:mod:`tools.photos`). Every row carries the CPU model,
its ISA flags and the CPU the other processes used while it was timed.
"""
from dataclasses import dataclass
import sys

import mxnet as mx

from .timing import LoadMeter, cpu_info, percentile, summarize, time_interleaved

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

    @property
    def label(self):
        return f"{self.impl}:{self.backend}:{self.model}:{self.dtype}:{self.mode}"


def _plain(net, x):
    net.hybridize(static_alloc=True, static_shape=True)
    net(x).wait_to_read()
    return net


def _fresh(impl, model, classes, x):
    from resnest.gluon import get_model

    from .reference import authors_model, gluoncv_model
    build = {"ours": get_model, "authors": authors_model, "gluoncv": gluoncv_model}[impl]
    net = build(model, classes=classes)
    net.initialize(mx.init.Xavier(), ctx=x.context)          # on the GPU with --num-gpus
    net(x[:1]).wait_to_read()
    return net


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
    if plain:
        found.append(Candidate("ours", "mxnet", model, "float32", "plain",
                               _plain(_fresh("ours", model, classes, x), x), x))
    calib = _calibration(input_size) if "int8" in dtypes else None
    for backend in backends:
        for dtype in dtypes:
            try:
                net = optimize(_fresh("ours", model, classes, x), dtype, backend=backend,
                               ctx=ctx, calib_data=calib if dtype == "int8" else None,
                               input_size=input_size, batch_size=batch_size,
                               calib_mode="naive")
            except UserError as err:
                skipped.append((f"ours:{backend}:{model}:{dtype}", str(err)))
                continue
            inputs = x if backend == "mxnet" else x.asnumpy()
            found.append(Candidate("ours", backend, model, dtype, "optimized", net, inputs))
    return found, skipped


def _size(model, input_size, classes):
    from resnest.gluon import get_model
    from resnest.gluon.flops import count_macs, count_params
    net = get_model(model, classes=classes)
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
        row.update(load.as_dict(), cpu=cpu["model"], isa=cpu["isa"])
        rows.append(row)
    _speedups(rows, times, found)
    return rows


def print_rows(rows):
    """The rows as a table, with the machine and the load line under it."""
    print(f"{'impl':8s}{'backend':12s}{'model':14s}{'dtype':9s}{'mode':10s}{'size':>5s}"
          f"{'batch':>6s}{'median':>9s}{'p99':>9s}{'img/s':>8s}  speed-up (paired)")
    for r in rows:
        ups = " ".join(f"{k[11:]}={v:.2f}x ({r['paired_' + k]:.2f}x)" for k, v in r.items()
                       if k.startswith("speedup_vs_"))
        print(f"{r['impl']:8s}{r['backend']:12s}{r['model']:14s}{r['dtype']:9s}{r['mode']:10s}"
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
