"""A cheap early refusal of input sizes that cannot fit in memory.

The estimate is a lower bound: the input batch times an activation factor, from measured
ResNeSt runs (training keeps every stage's activations for the backward pass). It only stops
sizes that cannot possibly work (``--input-size 30000``), before hours of set-up, never a
configuration that might.
"""
import os

from .errors import UserError

__all__ = ["available_bytes", "check_fits_in_memory"]

# Bytes of memory per byte of float32 input, at least (ResNeSt-14..50, measured peaks are
# higher): training keeps the activations of every layer, inference only a few at a time.
TRAIN_FACTOR = 40
INFER_FACTOR = 4


def available_bytes(ctx=None):
    """Free memory of ``ctx``: a GPU's free memory, else the machine's MemAvailable."""
    if ctx is not None and getattr(ctx, "device_type", "cpu") == "gpu":
        import mxnet as mx
        return int(mx.context.gpu_memory_info(ctx.device_id)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_fits_in_memory(batch_size, size, ctx=None, training=True, flag="--input-size"):
    """Raise :class:`UserError` when ``batch_size`` images of ``size`` x ``size`` certainly do
    not fit in the memory of ``ctx``."""
    need = batch_size * 3 * size * size * 4 * (TRAIN_FACTOR if training else INFER_FACTOR)
    have = available_bytes(ctx)
    if need > have:
        raise UserError(f"{flag} {size} with batch size {batch_size} needs at least "
                        f"{need / 2 ** 30:.1f} GiB but {have / 2 ** 30:.1f} GiB are free; use a "
                        "smaller size or batch.")
