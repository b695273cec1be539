"""Speed of the training step: the recipe's step against a minimal hand-written Gluon loop.

Both run the same model, batch and (Horovod) trainer on the same in-memory batch, in
alternating rounds so that machine noise hits both alike; the recipe's step adds mixup,
label smoothing, the loss/overflow allreduce, the LR schedule and the metrics hook. The data
pipeline is timed alone, to show whether it can keep up with the step.
"""
import statistics
import time

import mxnet as mx
import numpy as np
from mxnet import autograd

from .engine import LossScaler, train_step
from .losses import draw_mixup_lam
from .schedule import learning_rate

__all__ = ["time_rounds", "minimal_loop", "recipe_loop", "loader_rate"]


def minimal_loop(net, trainer, x, y, steps):
    """``steps`` plain Gluon steps (softmax cross-entropy, ``trainer.step``); returns seconds."""
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(steps):
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(x.shape[0])
    mx.nd.waitall()
    return time.perf_counter() - start


def recipe_loop(net, trainer, dist, x, y, steps, classes, monitor=None, log_interval=10):
    """``steps`` recipe steps (mixup + smoothing + schedule + global stats + metrics hook)."""
    rng, scaler = np.random.RandomState(0), LossScaler()
    start = time.perf_counter()
    for i in range(steps):
        trainer.set_learning_rate(learning_rate(100 + i, 1000, 10, 0.1))
        res = train_step(net, trainer, dist, x, y, classes, 0.1, draw_mixup_lam(rng, 0.2),
                         scaler)
        if monitor is not None:
            monitor.beat()
            if (i + 1) % log_interval == 0:
                monitor.step(0, i, steps, res.loss_sum / res.samples, 0.1, 1.0, 1.0)
    mx.nd.waitall()
    return time.perf_counter() - start


def time_rounds(loops, rounds, barrier=None):
    """Run each ``loops[name]()`` (returns seconds) ``rounds`` times, alternating; returns the
    median seconds per name."""
    times = {name: [] for name in loops}
    for _ in range(rounds):
        for name, loop in loops.items():
            if barrier is not None:
                barrier()
            times[name].append(loop())
    return {name: statistics.median(t) for name, t in times.items()}


def loader_rate(loader, batches):
    """Images per second the loader alone delivers over ``batches`` batches (after one)."""
    loader.set_epoch(0)
    it = iter(loader)
    next(it)
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        try:
            data, _, _ = next(it)
        except StopIteration:
            break
        data.wait_to_read()
        n += data.shape[0]
    return n / (time.perf_counter() - start)
