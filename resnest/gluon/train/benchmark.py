"""Speed of the training step: the recipe's step against a minimal hand-written Gluon loop.

Both run the same model, batch and (Horovod) trainer on the same in-memory batch, in
alternating rounds so that machine noise hits both alike; the recipe's step adds mixup,
label smoothing, the loss/overflow allreduce, the LR schedule and the metrics hook. The data
pipeline is timed alone, to show whether it can keep up with the step.
"""
import statistics
import time

import mxnet as mx
from mxnet import autograd

from .engine import LossScaler, Recipe, train_epoch

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


class _Repeat:
    """A loader yielding one in-memory batch ``steps`` times."""

    def __init__(self, x, y, steps):
        self.x, self.y, self.steps = x, y, steps

    def set_epoch(self, epoch, start_batch=0):
        pass

    def __len__(self):
        return self.steps

    def __iter__(self):
        return ((self.x, self.y, self.x.shape[0]) for _ in range(self.steps))


def recipe_loop(net, trainer, dist, x, y, steps, classes, monitor=None, log_interval=10):
    """``steps`` steps of the real epoch loop (mixup, smoothing, warm-up/cosine LR, global
    sums, the metrics hook) on one in-memory batch; returns seconds."""
    recipe = Recipe(classes=classes, num_epochs=10, base_lr=0.1, warmup_epochs=1,
                    smoothing_eps=0.1, mixup_alpha=0.2, log_interval=log_interval)
    start = time.perf_counter()
    train_epoch(net, trainer, dist, _Repeat(x, y, steps), recipe, 2, LossScaler(), monitor)
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
