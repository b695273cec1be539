"""Seeds derived from integers, so every random draw is a pure function of (seed, rank, epoch)."""
import random

import numpy as np

__all__ = ["derive_seed", "seed_everything"]


def derive_seed(*values):
    """A 31-bit seed that is a pure function of the non-negative integers ``values``."""
    return int(np.random.SeedSequence([int(v) for v in values]).generate_state(1)[0] >> 1)


def seed_everything(*values):
    """Seed MXNet, numpy and Python's ``random`` from ``derive_seed(*values)``."""
    import mxnet as mx
    s = derive_seed(*values)
    mx.random.seed(s)
    np.random.seed(s)
    random.seed(s)
