"""One training step and one epoch, on any number of ranks.

Every decision that must be the same on all ranks (skip an fp16 step whose gradients
overflowed, stop on a non-finite loss) is taken from numbers summed over the ranks, so the
ranks can never disagree. The per-step sums also give the global training loss for free: one
small allreduce of ``[loss_sum, samples, grads_overflowed, loss_not_finite_on_rank_0, ..._1,
...]``.

fp16 (GPU): ``mxnet.contrib.amp.init()`` casts inside the graph (the runner calls it before the
model is built) and :class:`~.scaling.LossScaler` does the dynamic loss scaling, rather than
``amp.init_trainer``'s hidden check (which waits on the host every step), with the all-rank
overflow decision above applied on the device. Every step checks the loss and every gradient
(fused, one op per 64 arrays, element by element): fp16 skips an overflowing step, fp32 stops
the run, since the update of that step is already applied.
"""
import time
from dataclasses import dataclass
from typing import List

import mxnet as mx
import numpy as np
from mxnet import autograd

from ..utils.errors import UserError
from ..utils.seed import derive_seed, seed_everything
from .scaling import LossScaler, optimizer_state_arrays

__all__ = ["TrainingDiverged", "LossScaler", "StepResult", "PendingStep", "sync_replicas",
           "train_step", "train_epoch"]


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; raised on every rank alike."""


@dataclass
class StepResult:
    """Global (all-rank) outcome of one step."""
    loss_sum: float
    samples: int
    skipped: bool
    bad_loss_ranks: List[int]
    overflow: bool = False


def _grads_finite(params, chunk=64):
    """NDArray ``[1.]`` when every gradient is finite, else ``[0.]`` (no wait).

    MXNet's fused ``multi_all_finite``, in chunks (it reads past its argument table beyond
    ~200 arrays). Every step needs it, fp32 too: oneDNN's ReLU turns NaN into 0, so one NaN
    pixel spoils the stem's weights while the loss stays finite, and the network then gives
    the same logits for every image without any other sign.
    """
    grads = [p.grad() for p in params if p.grad_req != "null"]
    flags = [mx.nd.multi_all_finite(*grads[i:i + chunk], num_arrays=len(grads[i:i + chunk]))
             for i in range(0, len(grads), chunk)]
    return flags[0] if len(flags) == 1 else mx.nd.min(mx.nd.concat(*flags, dim=0)).reshape((1,))


def _step_stats(loss, grads_ok, batch, dist):
    """``[loss_sum, samples, grads_not_finite, loss_not_finite on rank 0, on rank 1, ...]`` of
    this rank (summed over ranks by the caller: one small allreduce per step)."""
    loss_sum = loss.sum().reshape((1,))
    bad = 1 - mx.nd.contrib.isfinite(loss_sum)
    rank_hot = mx.nd.one_hot(mx.nd.array([dist.rank], ctx=loss.context), dist.size)
    return mx.nd.concat(mx.nd.where(bad, mx.nd.zeros_like(loss_sum), loss_sum),
                        mx.nd.full((1,), batch, ctx=loss.context), 1 - grads_ok,
                        rank_hot.reshape((-1,)) * bad, dim=0)


def train_step(net, trainer, dist, batch, loss_fn, scaler=None, wait=True, name="step_stats"):
    """Forward, backward, gradient allreduce and (unless any rank had a non-finite loss or
    gradient) the update.

    Parameters
    ----------
    net, trainer : the model and its (distributed) Trainer; the LR is set by the caller.
    dist : Dist
    batch : tuple
        One batch of the loader, on ``dist.ctx``.
    loss_fn : callable
        ``loss_fn(net, batch)`` -> per-sample losses, shape ``(samples,)``; called inside
        ``autograd.record()`` (the task's loss: e.g. mixed, smoothed cross-entropy).
    scaler : LossScaler or None
        fp16: scales the loss and applies the update on the device only where every rank's
        step was finite (:meth:`~.scaling.LossScaler.step`); nothing waits.
    wait : bool
        fp32: True waits for the all-rank sums and skips the update when any rank had a
        non-finite loss or gradient; False updates at once and returns a
        :class:`PendingStep`, read one step later (waiting costs a small model on a CPU a
        good part of its speed); a non-finite value then stops the run.
    name : str
        Horovod name of the sums (alternate names when steps overlap).

    Returns
    -------
    StepResult or PendingStep
        Summed over ranks. The update was skipped when ``skipped``; ``bad_loss_ranks`` lists
        the ranks whose loss was not finite.
    """
    scaler = scaler or LossScaler()
    with autograd.record():
        loss = loss_fn(net, batch)
        scaled = scaler.scale_loss(loss)
    scaled.backward()
    trainer.allreduce_grads()
    samples = loss.shape[0]
    with autograd.pause():
        local = _step_stats(loss, _grads_finite(trainer._params), samples, dist)
    if scaler.dynamic:
        stats = dist.allreduce_start(local, name)
        ok = (stats[2:].sum() == 0).reshape((1,)).as_in_context(loss.context)
        scaler.step(trainer, ok, samples)
        pending = PendingStep(stats, guarded=True)
        return pending.result() if wait else pending
    if not wait:
        pending = PendingStep(dist.allreduce_start(local, name))
        trainer.update(samples)
        return pending
    res = _step_result(dist.allreduce_sum(local, name), skip_bad=True)
    if not res.skipped:
        trainer.update(samples)
    return res


def _step_result(stats, skip_bad):
    bad_ranks = [int(r) for r in np.nonzero(stats[3:])[0]]
    skipped = skip_bad and (bool(stats[2] > 0) or bool(bad_ranks))
    return StepResult(float(stats[0]), int(stats[1]), skipped, bad_ranks,
                      overflow=bool(stats[2] > 0))


class PendingStep:
    """A step whose all-rank sums are still on their way: already applied (fp32), or applied
    only where they were finite (``guarded``, fp16)."""

    def __init__(self, stats, guarded=False):
        self._stats, self._guarded = stats, guarded

    def result(self):
        """Wait for the sums; a :class:`StepResult`."""
        return _step_result(self._stats.asnumpy(), skip_bad=self._guarded)


class _NullHooks:
    def beat(self):
        pass

    def step(self, **kw):
        pass


def train_epoch(net, trainer, dist, loader, recipe, epoch, scaler=None, hooks=None,
                start_step=0, save_every=0, save=None):
    """Train one epoch (from step ``start_step``); returns ``{'train_loss', 'img_per_sec',
    'lr', 'skipped_steps', 'epoch_time', 'samples'}`` with global (all-rank) numbers.

    ``recipe`` is the task's recipe (e.g. :class:`~.classification.ClassificationRecipe`):
    ``num_epochs``, ``seed``, ``log_interval``, ``begin_epoch(net, epoch)`` (e.g. DropBlock's
    ramp), ``learning_rate(step, steps_per_epoch)`` for the global step number, and
    ``step_loss(rank, epoch, step)``, the loss function of one step (drawing that step's own
    random numbers, e.g. mixup's). Every other random draw of a step (DropBlock, dropout) comes
    from MXNet's generator, seeded here from ``(seed, rank, epoch, step)``, so a run resumed at
    any step draws exactly what it would have drawn.

    ``hooks`` (optional) gets ``beat()`` after every step (the watchdog) and
    ``step(epoch=, step=, steps=, loss=, lr=, img_per_sec=, loss_scale=)`` every
    ``recipe.log_interval`` steps and at the end. ``save(epoch, steps_done)`` is called after
    every ``save_every`` steps, with exactly that many steps applied (a mid-epoch checkpoint).
    Raises :class:`TrainingDiverged` on every rank when any rank's loss or gradients are not
    finite.
    """
    hooks = hooks or _NullHooks()
    loader.set_epoch(epoch, start_step)
    seed_everything(recipe.seed, dist.rank, epoch)
    recipe.begin_epoch(net, epoch)
    steps = len(loader)
    meter = _EpochMeter(epoch, steps, recipe.log_interval, hooks, scaler)
    # Every step's all-rank outcome is read one step later, except before a checkpoint, which
    # must hold exactly its steps (fp16 decides on the device whether to apply a step).
    pending = None
    for i, batch in enumerate(loader, start_step):
        meter.lr = recipe.learning_rate(epoch * steps + i, steps)
        trainer.set_learning_rate(meter.lr)
        mx.random.seed(derive_seed(recipe.seed, dist.rank, epoch, i))
        loss_fn = recipe.step_loss(dist.rank, epoch, i)
        checkpoint = save is not None and save_every and (i + 1) % save_every == 0 \
            and i + 1 < steps
        wait = checkpoint
        if pending is not None and wait:
            meter.add(pending.result(), i - 1)
            pending = None
        res = train_step(net, trainer, dist, batch, loss_fn, scaler, wait=wait,
                         name=f"step_stats.{i % 2}")
        if pending is not None:
            meter.add(pending.result(), i - 1)
        pending = None if wait else res
        if wait:
            meter.add(res, i)
        if checkpoint:
            save(epoch, i + 1)
    if pending is not None:
        meter.add(pending.result(), steps - 1)
    return meter.summary()


class _EpochMeter:
    """Global sums of an epoch, the stop on non-finite values, and the periodic log hook."""

    def __init__(self, epoch, steps, log_interval, hooks, scaler):
        self.epoch, self.steps, self.log_interval = epoch, steps, log_interval
        self.hooks, self.scaler, self.lr = hooks, scaler, 0.0
        self.fp16 = scaler is not None and scaler.dynamic      # skips overflows; fp32 stops
        self.loss_sum = self.samples = self.skipped = 0
        self.window_loss = self.window_samples = 0
        self.start = self.window_start = time.perf_counter()

    def add(self, res, i):
        self.hooks.beat()
        where = f"at epoch {self.epoch} step {i}"
        if res.bad_loss_ranks and (not self.fp16 or self.scaler.at_minimum()):
            raise TrainingDiverged(
                f"the training loss is not finite {where} on rank(s) "
                f"{', '.join(map(str, res.bad_loss_ranks))}; lower --lr or check the data.")
        if res.overflow and not self.fp16:
            raise TrainingDiverged(
                f"the gradients are not finite {where} (a NaN or Inf in the data, or an "
                "exploding gradient; fp32 has no loss scaling to recover, the last checkpoint "
                "is intact); lower --lr or check the data.")
        self.loss_sum += res.loss_sum
        self.samples += res.samples
        self.skipped += res.skipped
        self.window_loss += res.loss_sum
        self.window_samples += res.samples
        if (i + 1) % self.log_interval == 0 or i + 1 == self.steps:
            now = time.perf_counter()
            self.hooks.step(epoch=self.epoch, step=i, steps=self.steps,
                            loss=self.window_loss / max(self.window_samples, 1), lr=self.lr,
                            img_per_sec=self.window_samples / max(now - self.window_start,
                                                                  1e-9),
                            loss_scale=(self.scaler.scale if self.scaler else 1.0))
            self.window_loss = self.window_samples = 0
            self.window_start = now

    def summary(self):
        elapsed = time.perf_counter() - self.start
        return {"train_loss": self.loss_sum / max(self.samples, 1),
                "img_per_sec": self.samples / elapsed, "lr": self.lr,
                "skipped_steps": int(self.skipped), "epoch_time": elapsed,
                "samples": int(self.samples)}


def sync_replicas(net, trainer, dist):
    """Make every rank hold the same model: BN running statistics averaged over the ranks
    (each saw different images), then rank 0's weights and optimizer state on every rank.

    Called at the end of every epoch and before every mid-epoch checkpoint. The weights
    should already agree (same start, same summed gradients); they did not when evaluation
    ran on the training network (oneDNN's inference kernels convert the weights in place, and
    4 Gloo ranks then drifted apart by a few ulp; the runner now evaluates a copy, see
    ``runner._evaluation_copy``).
    Re-sending rank 0's state makes "every rank holds the checkpoint's model" a guarantee
    rather than a consequence, for the cost of one broadcast of the weights and optimizer
    state per call (with momentum, about the data of two training steps' gradient allreduce;
    an ImageNet epoch has over a thousand steps).
    """
    params = sorted(net.collect_params().items())
    stats = [p.data() for name, p in params if name.endswith(("running_mean", "running_var"))]
    dist.average_in_place(stats, "bn_stats")
    weights = [p.data() for name, p in params
               if not name.endswith(("running_mean", "running_var"))]
    dist.broadcast_arrays(weights, "sync.weights")
    dist.broadcast_arrays(optimizer_state_arrays(trainer), "sync.states")
