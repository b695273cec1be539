"""Timing of model forward passes: warm-up, synchronisation, percentiles, interleaved rounds.

MXNet runs asynchronously: a forward call returns before the work is done, so every timed call
ends with ``wait_to_read()`` on its output. Shared machines are noisy, so candidates are timed
in interleaved rounds (A, B, C, A, B, C, ...) inside one process and compared by their medians.
"""
import math
import time
from dataclasses import dataclass

import mxnet as mx

__all__ = ["Timing", "percentile", "summarize", "time_calls", "time_interleaved", "sync_output"]


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
