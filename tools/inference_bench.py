"""The inference benchmark behind ``scripts/gluon/benchmark.py``: what is timed and how it is
reported.

Per model x batch size x input size, every candidate (ours per dtype, optimized by
:func:`resnest.gluon.inference.optimize`; ours plain hybridized; the authors' and GluonCV's
models plain hybridized; our ONNX export in onnxruntime) is timed model-only on one random
batch, in interleaved rounds in one process, after warm-up, each call synchronised.
"""
from dataclasses import dataclass
import sys

import mxnet as mx

from .timing import summarize, time_interleaved

__all__ = ["Candidate", "build_candidates", "benchmark_rows", "print_rows", "draw_chart"]


@dataclass
class Candidate:
    """One thing to time: ``fn(inputs)`` plus what the result row says about it."""

    impl: str              # ours, authors, gluoncv, onnxruntime
    model: str
    dtype: str
    mode: str              # optimized or plain (hybridized only)
    fn: object
    inputs: object

    @property
    def label(self):
        return f"{self.impl}:{self.model}:{self.dtype}:{self.mode}"


def _plain(net, x):
    net.hybridize(static_alloc=True, static_shape=True)
    net(x).wait_to_read()
    return net


def _fresh(impl, model, classes, x):
    from resnest.gluon import get_model

    from .reference import authors_model, gluoncv_model
    build = {"ours": get_model, "authors": authors_model, "gluoncv": gluoncv_model}[impl]
    net = build(model, classes=classes)
    net.initialize(mx.init.Xavier())
    net(x[:1]).wait_to_read()
    return net


def build_candidates(model, batch_size, input_size, dtypes=("float32",), plain=False,
                     baselines=(), onnx=False, classes=1000, ctx=None, workdir=None):
    """The :class:`Candidate` list for one model x batch size x input size.

    Weights are random (speed does not depend on them); int8 is calibrated on random batches
    (naive min/max), which measures the speed of the int8 graph, not its accuracy (verify.py
    calibrates on real images). ``baselines`` names implementations timed plain fp32 beside
    ours: ``'authors'`` (their published Gluon model), ``'gluoncv'`` (GluonCV's resnest50 and
    resnet50_v1d). Returns ``(candidates, skipped)`` where skipped lists ``(label, reason)``.
    """
    from resnest.gluon import UserError
    from resnest.gluon.inference import optimize
    ctx = ctx or mx.cpu()
    x = mx.nd.random.uniform(shape=(batch_size, 3, input_size, input_size), ctx=ctx)
    found, skipped = [], []
    for impl in baselines:
        names = ["resnest50", "resnet50_v1d"] if impl == "gluoncv" and model == "resnest50" \
            else [model]
        for name in names:
            try:
                found.append(Candidate(impl, name, "float32", "plain",
                                       _plain(_fresh(impl, name, classes, x), x), x))
            except (UserError, ValueError) as err:
                skipped.append((f"{impl}:{name}", str(err)))
    if plain:
        found.append(Candidate("ours", model, "float32", "plain",
                               _plain(_fresh("ours", model, classes, x), x), x))
    for dtype in dtypes:
        calib = [mx.nd.random.uniform(shape=x.shape)] if dtype == "int8" else None
        try:
            net = optimize(_fresh("ours", model, classes, x), dtype, ctx=ctx, calib_data=calib,
                           input_size=input_size, batch_size=batch_size, calib_mode="naive")
            found.append(Candidate("ours", model, dtype, "optimized", net, x))
        except UserError as err:
            skipped.append((f"ours:{model}:{dtype}", str(err)))
    if onnx:
        found.append(_onnx_candidate(model, classes, x, workdir))
    return found, skipped


def _onnx_candidate(model, classes, x, workdir):
    import os
    import tempfile
    from resnest.gluon.inference.export import export_onnx, onnx_runner
    folder = workdir or tempfile.mkdtemp(prefix="resnest-onnx-")
    path = export_onnx(_fresh("ours", model, classes, x), os.path.join(folder, model + ".onnx"),
                       input_size=x.shape[2], batch_size=x.shape[0])
    return Candidate("onnxruntime", model, "float32", "optimized", onnx_runner(path),
                     x.asnumpy())


def _size(model, input_size, classes):
    import mxnet as mx
    from resnest.gluon import get_model
    from resnest.gluon.flops import count_macs, count_params
    net = get_model(model, classes=classes)
    net.initialize()
    net(mx.nd.zeros((1, 3, 64, 64)))
    return count_params(net) / 1e6, 2 * count_macs(net, input_size) / 1e9


def benchmark_rows(args, model, batch_size, input_size, ctx, threads):
    """Time every candidate of one model x batch x input size; rows of results."""
    from resnest.gluon import PRETRAINED
    found, skipped = build_candidates(model, batch_size, input_size, args.dtypes, args.plain,
                                      args.baseline, args.onnx, args.classes, ctx)
    for label, reason in skipped:
        print(f"skipped {label}: {reason}", file=sys.stderr)
    times = time_interleaved({c.label: c.fn for c in found},
                             {c.label: c.inputs for c in found},
                             rounds=args.rounds, runs_per_round=args.runs, warmup=args.warmup)
    params_m, gflops = _size(model, input_size, args.classes)
    rows = []
    for c in found:
        info = PRETRAINED.get(c.model)
        row = dict(model=c.model, impl=c.impl, dtype=c.dtype, mode=c.mode,
                   input_size=input_size, threads=threads,
                   **summarize(times[c.label], batch_size).as_dict())
        if c.impl == "ours":
            row.update(params_m=round(params_m, 4), gflops=round(gflops, 4))
        row["top1"] = info.top1 if info else None
        rows.append(row)
    for base in [r for r in rows if r["impl"] in ("authors", "gluoncv")]:
        key = f"speedup_vs_{base['impl']}_{base['model']}"
        for row in rows:
            row[key] = round(row["images_per_s"] / base["images_per_s"], 3)
    return rows


def print_rows(rows):
    print(f"{'impl':12s}{'model':24s}{'dtype':9s}{'mode':10s}{'size':>5s}{'batch':>6s}"
          f"{'median':>9s}{'p90':>9s}{'p99':>9s}{'img/s':>8s}  speed-up")
    for r in rows:
        ups = " ".join(f"{k[11:]}={v:.2f}x" for k, v in r.items() if k.startswith("speedup_vs_"))
        print(f"{r['impl']:12s}{r['model']:24s}{r['dtype']:9s}{r['mode']:10s}"
              f"{r['input_size']:5d}{r['batch_size']:6d}{r['median_ms']:9.1f}{r['p90_ms']:9.1f}"
              f"{r['p99_ms']:9.1f}{r['images_per_s']:8.1f}  {ups}")


def draw_chart(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5))
    for r in rows:
        if r["top1"] is None:
            continue
        ms = r["median_ms"] / r["batch_size"]
        ax.scatter(ms, r["top1"])
        ax.annotate(f"{r['impl']} {r['model']} {r['dtype']} b{r['batch_size']}", (ms, r["top1"]),
                    fontsize=7)
    ax.set_xlabel("latency per image (ms), this CPU")
    ax.set_ylabel("published ImageNet top-1 (%)")
    ax.set_title("ResNeSt: accuracy vs CPU latency")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
