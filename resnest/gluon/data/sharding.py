"""Which samples each rank reads: the training shard of an epoch and the padded validation plan.

Both loader back-ends and every evaluation source (a ``.rec``, a class-folder tree, a list of
files) take their order from here, so the rules exist once:

* training: one global permutation per ``(seed, epoch)``, the same on every rank, wrapped
  around so every rank gets the same number of full batches, dealt out round-robin;
* evaluation: rank ``r`` reads a contiguous share (shares differ by at most one and sum to the
  dataset), padded by repeating its own images so that every rank runs the same number of
  batches; ``valid`` says how many images at the start of each batch are real.
"""
import math

import numpy as np

from ..utils.seed import derive_seed

__all__ = ["train_shard", "val_shard", "val_plan"]


def train_shard(num_samples, batch_size, rank, num_ranks, seed, epoch):
    """This rank's sample indices for one training epoch (see the module doc)."""
    batches = max(1, math.ceil(num_samples / (num_ranks * batch_size)))
    order = np.random.RandomState(derive_seed(seed, epoch)).permutation(num_samples)
    total = batches * batch_size * num_ranks
    order = np.resize(order, total)  # np.resize repeats from the start: padding by wrapping
    return order[rank::num_ranks]


def val_shard(num_samples, rank, num_ranks):
    """``range`` of sample positions for this rank; shares differ by at most one and sum to
    ``num_samples``."""
    return range(num_samples * rank // num_ranks, num_samples * (rank + 1) // num_ranks)


def val_plan(num_samples, batch_size, rank, num_ranks):
    """``(positions, valid)`` of one rank's evaluation: ``positions`` (a multiple of
    ``batch_size`` long, the same length on every rank) lists sample indices, padded by
    repeating the share; ``valid[i]`` is the number of real samples in batch ``i``."""
    share = list(val_shard(num_samples, rank, num_ranks))
    batches = math.ceil(math.ceil(num_samples / num_ranks) / batch_size)
    fill = share or [0]
    positions = [fill[i % len(fill)] for i in range(batches * batch_size)]
    valid = [max(0, min(batch_size, len(share) - i * batch_size)) for i in range(batches)]
    return positions, valid
