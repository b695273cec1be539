"""Real images for int8 calibration, in the forms the backends' quantizers take.

Every backend calibrates on real images (never random data: the activation ranges of random
inputs are not those of photos). ``calib_data`` is an iterable of NDArray or numpy batches, or
of ``(data, label, ...)`` tuples such as the batches of :func:`resnest.gluon.data.eval_loader`.
"""
import mxnet as mx
import numpy as np

from ..utils.errors import UserError

__all__ = ["calibration_batches", "calibration_arrays", "spread_batches"]

_NO_DATA = ("int8 calibration needs at least one batch of real images (pass calib_data, e.g. "
            "an eval_loader over a few hundred images).")


def _batches(data, max_batches):
    """The data arrays of ``data``, one shape only (the quantizers bind one input shape)."""
    first = None
    for count, item in enumerate(data):
        batch = item[0] if isinstance(item, (list, tuple)) else item
        if first is not None and tuple(batch.shape) != first:
            break                                      # e.g. a smaller last batch
        first = tuple(batch.shape)
        yield batch
        if max_batches and count + 1 >= max_batches:
            break


def calibration_batches(data, max_batches=None):
    """Re-iterable list of ``[batch]`` (NDArrays on the CPU) for MXNet's quantizer."""
    batches = [[(b if isinstance(b, mx.nd.NDArray) else mx.nd.array(b)).as_in_context(mx.cpu())]
               for b in _batches(data, max_batches)]
    if not batches:
        raise UserError(_NO_DATA)
    return batches


def calibration_arrays(data, max_batches=None):
    """List of float32 numpy batches for onnxruntime's static quantization."""
    arrays = [np.ascontiguousarray(b.asnumpy() if isinstance(b, mx.nd.NDArray) else b,
                                   dtype=np.float32) for b in _batches(data, max_batches)]
    if not arrays:
        raise UserError(_NO_DATA)
    return arrays


def spread_batches(loader, count):
    """``count`` batches of ``loader`` spread evenly over it (record files are often in class
    order, so the first batches would be one class), skipping the batches in between without
    decoding them; for int8 calibration."""
    step = max(1, len(loader) // max(1, count))
    batches = []
    for start in range(0, min(len(loader), step * count), step):
        loader.set_epoch(0, start_batch=start)
        batches.append(next(iter(loader)))
    loader.set_epoch(0, start_batch=0)
    return batches
