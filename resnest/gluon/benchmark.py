"""Timing of model forward passes: warm-up, synchronisation, percentiles, interleaved rounds.

MXNet runs asynchronously: a forward call returns before the work is done, so every timed call
ends with ``wait_to_read()`` on its output. Shared machines are noisy, so candidates are timed
in interleaved rounds (A, B, C, A, B, C, ...) inside one process and compared by their medians.
"""
import math
import time
from dataclasses import dataclass

import mxnet as mx

__all__ = ["Timing", "Candidate", "percentile", "summarize", "time_calls", "time_interleaved",
           "sync_output", "build_candidates"]


@dataclass(frozen=True)
class Timing:
    """Per-batch latency percentiles (ms) and throughput (images/s) of one candidate."""

    batch_size: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    images_per_s: float
    runs: int

    def as_dict(self):
        return dict(batch_size=self.batch_size, median_ms=round(self.median_ms, 3),
                    p90_ms=round(self.p90_ms, 3), p99_ms=round(self.p99_ms, 3),
                    images_per_s=round(self.images_per_s, 2), runs=self.runs)


def percentile(values, q):
    """The ``q``-th percentile (0..100) of ``values`` with linear interpolation (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    pos = (len(ordered) - 1) * q / 100.0
    low, high = int(math.floor(pos)), int(math.ceil(pos))
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(seconds, batch_size):
    """:class:`Timing` of a list of per-batch times in seconds.

    Throughput is ``batch_size / median``: the median is robust to the bursts of other
    processes on a shared machine, where a mean is not.
    """
    median = percentile(seconds, 50)
    return Timing(batch_size, median * 1e3, percentile(seconds, 90) * 1e3,
                  percentile(seconds, 99) * 1e3, batch_size / median, len(seconds))


def sync_output(out):
    """Block until ``out`` (an NDArray, a list of them, or numpy) is computed."""
    if isinstance(out, (list, tuple)):
        for item in out:
            sync_output(item)
    elif isinstance(out, mx.nd.NDArray):
        out.wait_to_read()
    return out


def time_calls(fn, x, runs=10, warmup=3):
    """Seconds of each of ``runs`` synchronised calls ``fn(x)``, after ``warmup`` untimed calls.

    Warm-up matters: the first calls of a hybridized MXNet block build its graph, allocate its
    memory and let oneDNN choose and JIT-compile its kernels.
    """
    for _ in range(warmup):
        sync_output(fn(x))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sync_output(fn(x))
        times.append(time.perf_counter() - start)
    return times


def time_interleaved(candidates, x, rounds=5, runs_per_round=2, warmup=2):
    """Time several callables on the same input in interleaved rounds.

    Parameters
    ----------
    candidates : dict
        ``name -> callable(x)``; a callable may also take its own input (see ``inputs``).
    x : NDArray or dict
        One input for all, or ``name -> input`` (e.g. a numpy array for onnxruntime).
    rounds, runs_per_round, warmup : int
        Each round times every candidate ``runs_per_round`` times, in turn.

    Returns
    -------
    dict
        ``name -> list of seconds`` (``rounds * runs_per_round`` per candidate).
    """
    inputs = x if isinstance(x, dict) else {name: x for name in candidates}
    for name, fn in candidates.items():
        for _ in range(warmup):
            sync_output(fn(inputs[name]))
    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            times[name] += time_calls(fn, inputs[name], runs=runs_per_round, warmup=0)
    return times


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
    from .reference import authors_model, gluoncv_model
    from .registry import get_model
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
    from .errors import UserError
    from .inference import INT8_EXCLUDE_FAST, optimize
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
        if dtype == "int8":
            # Also the faster, less accurate choice: split-attention convs in int8 as well.
            net = optimize(_fresh("ours", model, classes, x), dtype, ctx=ctx, calib_data=calib,
                           input_size=input_size, batch_size=batch_size, calib_mode="naive",
                           exclude=INT8_EXCLUDE_FAST)
            found.append(Candidate("ours", model, dtype, "int8-fast", net, x))
    if onnx:
        found.append(_onnx_candidate(model, classes, x, workdir))
    return found, skipped


def _onnx_candidate(model, classes, x, workdir):
    import os
    import tempfile
    from .export import export_onnx, onnx_runner
    folder = workdir or tempfile.mkdtemp(prefix="resnest-onnx-")
    path = export_onnx(_fresh("ours", model, classes, x), os.path.join(folder, model + ".onnx"),
                       input_size=x.shape[2], batch_size=x.shape[0])
    return Candidate("onnxruntime", model, "float32", "optimized", onnx_runner(path),
                     x.asnumpy())
