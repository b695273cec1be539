"""Timing of model forward passes: warm-up, synchronisation, percentiles, interleaved rounds,
and what else ran on the machine meanwhile.

MXNet runs asynchronously: a forward call returns before the work is done, so every timed call
ends with ``wait_to_read()`` on its output. Shared machines are noisy, so candidates are timed
in interleaved rounds (A, B, C, A, B, C, ...) inside one process and compared by their medians,
and :class:`LoadMeter` records how much CPU the other processes used during the timing: a run
where they used more than :data:`NOISY_CORES` is flagged, its absolute times are not those of
a quiet machine (only the ratios of interleaved candidates stay comparable).
"""
import math
import os
import random
import time
from dataclasses import dataclass

import mxnet as mx

__all__ = ["Timing", "LoadMeter", "NOISY_CORES", "cpu_info", "percentile", "summarize",
           "time_calls", "time_interleaved", "sync_output"]

# Other processes' CPU use (in cores) above which a timing run is flagged as noisy.
NOISY_CORES = 0.1
_ISA = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8",
        "amx_bf16")


def cpu_info(path="/proc/cpuinfo"):
    """``{'model', 'cores', 'isa': {flag: bool}, 'amx'}`` of this machine (Linux); the model and
    flags come from :mod:`resnest.gluon.utils.cpu`."""
    from resnest.gluon.utils.cpu import cpu_flags, cpu_model
    flags = cpu_flags(path)
    isa = {flag: flag in flags for flag in _ISA}
    return {"model": cpu_model(path), "cores": len(os.sched_getaffinity(0)), "isa": isa,
            "amx": isa["amx_tile"]}


def _cpu_ticks():
    """(busy ticks of the whole machine, steal ticks, this process's ticks, wall time)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    with open("/proc/self/stat") as f:
        own = f.read().rsplit(")", 1)[1].split()
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6]   # user nice sys irq softirq
    steal = fields[7] if len(fields) > 7 else 0
    return busy, steal, int(own[11]) + int(own[12]), time.time()


class LoadMeter:
    """Context manager: the CPU other processes used (``other_cores``, in cores) and the
    hypervisor's steal (``steal_pct`` of all cores) while the block ran; ``noisy`` when the
    others used more than :data:`NOISY_CORES`."""

    other_cores = steal_pct = 0.0

    def __enter__(self):
        self._start = _cpu_ticks()
        return self

    def __exit__(self, *exc):
        end = _cpu_ticks()
        tick = os.sysconf("SC_CLK_TCK")
        seconds = max(end[3] - self._start[3], 1e-6)
        others = (end[0] - self._start[0]) - (end[2] - self._start[2])
        self.other_cores = round(max(others, 0) / tick / seconds, 2)
        self.steal_pct = round(100.0 * (end[1] - self._start[1]) / tick / seconds
                               / (os.cpu_count() or 1), 1)
        return False

    @property
    def noisy(self):
        return self.other_cores > NOISY_CORES

    def as_dict(self):
        return {"other_cores": self.other_cores, "steal_pct": self.steal_pct,
                "noisy": self.noisy}


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
    """The ``q``-th percentile (0..100) of ``values``, linear interpolation (numpy's default)."""
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


def time_interleaved(candidates, x, rounds=5, runs_per_round=2, warmup=2, shuffle=False,
                     seed=0, gap=0.0):
    """Time several callables on the same input in interleaved rounds.

    Parameters
    ----------
    candidates : dict
        ``name -> callable(x)``; a callable may also take its own input (see ``inputs``).
    x : NDArray or dict
        One input for all, or ``name -> input`` (e.g. a numpy array for onnxruntime).
    rounds, runs_per_round, warmup : int
        Each round times every candidate ``runs_per_round`` times, in turn.
    shuffle : bool
        A new random order of the candidates in every round (``seed``), so that none always
        runs right after the same other one (a spinning engine slows the next candidate).
    gap : float
        Seconds to sleep before each candidate's turn, so that the previous engine's threads
        have stopped spin-waiting (MXNet's OpenMP, onnxruntime's and OpenVINO's pools) and do
        not take cores from the one being timed.

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
    order, rng = list(candidates), random.Random(seed)
    for _ in range(rounds):
        if shuffle:
            rng.shuffle(order)
        for name in order:
            if gap:
                time.sleep(gap)
            times[name] += time_calls(candidates[name], inputs[name], runs=runs_per_round,
                                      warmup=0)
    return times
