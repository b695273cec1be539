"""Schedules of the published recipes: learning rate per iteration (the classifiers' warm-up +
cosine, the segmentation models' poly), DropBlock probability per epoch."""
import math

__all__ = ["learning_rate", "poly_learning_rate", "dropblock_prob", "global_lr"]


def global_lr(lr_per_worker, workers):
    """The linear scaling rule of the recipe: global LR = per-worker LR x number of workers."""
    return lr_per_worker * workers


def learning_rate(step, total_steps, warmup_steps, base_lr):
    """LR for the update numbered ``step`` (0-based) of ``total_steps``.

    Linear warm-up from 0 over ``warmup_steps`` updates, then cosine from ``base_lr`` down to 0
    at ``total_steps``. A pure function of its arguments, so resuming at any step (on any
    number of ranks, with ``step`` re-derived from the epoch) continues the same curve.
    """
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    span = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * t))


def poly_learning_rate(step, total_steps, warmup_steps, base_lr, power=0.9):
    """LR for the update numbered ``step`` (0-based) of ``total_steps``: the same linear
    warm-up from 0 as :func:`learning_rate`, then GluonCV's ``LRScheduler(mode='poly')`` over
    the remaining ``n = total_steps - warmup_steps`` updates,
    ``base_lr * (1 - t / (n - 1)) ** power`` at update ``t`` of them (``t`` clipped to
    ``[0, n - 1]``): ``base_lr`` at the first, 0 at the last. GluonCV's segmentation
    train.py uses ``power=0.9``. A pure function of its arguments, like :func:`learning_rate`.
    """
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    last = max(1, total_steps - warmup_steps - 1)
    t = min(max(0, step - warmup_steps), last)
    return base_lr * (1.0 - t / last) ** power


def dropblock_prob(epoch, num_epochs, target):
    """DropBlock probability for ``epoch`` (0-based), the authors' ramp (their
    ``DropBlockScheduler(net, 0, target, num_epochs)``): ``target * (epoch + 1) / num_epochs``,
    from ``target / num_epochs`` in the first epoch to ``target`` in the last."""
    return float(target) * min(1.0, (epoch + 1) / max(1, num_epochs))
