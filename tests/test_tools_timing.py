"""The timing helpers (tools/timing.py): percentiles as numpy computes them, the median for
throughput, synchronised calls, interleaved rounds with untimed gaps."""
import time

import mxnet as mx
import numpy as np
import pytest

from tools.timing import percentile, summarize, time_calls, time_interleaved


def test_percentile_matches_numpy():
    values = list(np.random.RandomState(1).rand(37))
    for q in (0, 50, 90, 99, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_summarize_uses_median_for_throughput():
    t = summarize([0.1, 0.1, 0.1, 0.1, 10.0], batch_size=8)   # one burst of noise
    assert t.median_ms == pytest.approx(100.0)
    assert t.images_per_s == pytest.approx(80.0)
    assert t.p99_ms > 9000 and t.runs == 5


def test_timing_waits_for_the_result():
    # An asynchronous op that returns at once but takes time: timed only if synchronised.
    x = mx.nd.random.uniform(shape=(600, 600))
    slow = lambda a: mx.nd.dot(mx.nd.dot(a, a), a)          # noqa: E731
    times = time_calls(slow, x, runs=3, warmup=1)
    assert len(times) == 3 and min(times) > 1e-4


def test_interleaved_times_every_candidate_equally():
    calls = []
    fns = {name: (lambda v, n=name: calls.append(n) or v) for name in "abc"}
    times = time_interleaved(fns, mx.nd.ones(1), rounds=3, runs_per_round=2, warmup=1)
    assert {k: len(v) for k, v in times.items()} == {"a": 6, "b": 6, "c": 6}
    assert calls[3:9] == ["a", "a", "b", "b", "c", "c"]   # after warm-up: a round in turn


def test_the_gap_leaves_the_cores_idle_before_each_turn_and_is_not_timed():
    stamps = []
    fns = {name: (lambda v, n=name: stamps.append((n, time.perf_counter())) or v)
           for name in "ab"}
    times = time_interleaved(fns, mx.nd.ones(1), rounds=2, runs_per_round=2, warmup=0,
                             gap=0.05)
    turns = [t for (n, t), (m, _) in zip(stamps[1:], stamps) if n != m]   # a -> b, b -> a
    assert len(turns) == 3 and all(t - prev >= 0.05 for t, prev in
                                   zip(turns, [s for (n, s), (m, _) in
                                               zip(stamps, stamps[1:]) if n != m]))
    assert max(max(v) for v in times.values()) < 0.05       # the sleep is outside the timing
