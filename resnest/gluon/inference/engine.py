"""What the other inference engines share: the optional packages, and the block that makes an
engine look like an MXNet model (float32 NCHW in, NDArray outputs out, structured as the MXNet
model's), so that :func:`resnest.gluon.evaluate.evaluate` and :func:`~.predict.predict` run
it unchanged.
"""
import importlib

import mxnet as mx
import numpy as np

from ..utils.errors import UserError

__all__ = ["EngineModel", "require"]


def require(module, backend):
    """Import ``module`` (e.g. ``'onnxruntime'``) or raise one sentence on how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise UserError(f"the {backend} backend needs the {package} package, which is not "
                        "installed; pip install resnest[deploy].") from None


class EngineModel:
    """A compiled model of another engine, called like a Gluon block.

    Parameters
    ----------
    run : callable
        ``numpy float32 (N, 3, H, W) -> numpy outputs``: one array (a classifier's logits),
        or a list of arrays for a model returning a tuple in MXNet (a segmentation model's
        ``(main, aux)`` scores, ``(N, classes, H, W)`` each).
    backend, dtype : str
        What it is, for messages and benchmark rows.
    input_size : int
        The spatial size the model was exported at (the batch size is free).
    info : dict, optional
        Facts about the build (files, excluded nodes, threads), kept as ``.info``.
    any_size : bool
        The export leaves height and width free too: images of any size run.
    """

    def __init__(self, run, backend, dtype, input_size, info=None, any_size=False):
        self._run = run
        self.backend, self.dtype, self.input_size = backend, dtype, input_size
        self.any_size = any_size
        self.info = dict(info or {})

    def __repr__(self):
        size = "any size" if self.any_size else f"{self.input_size}x{self.input_size}"
        return f"EngineModel({self.backend}, {self.dtype}, {size})"

    def predict_numpy(self, x):
        """Outputs of a float32 NCHW batch as numpy (an array, or a list of them)."""
        x = x.asnumpy() if isinstance(x, mx.nd.NDArray) else np.asarray(x)
        if x.ndim != 4 or x.shape[1] != 3 or \
                (not self.any_size and x.shape[2:] != (self.input_size,) * 2):
            raise UserError(f"this {self.backend} model takes (N, 3, {self.input_size}, "
                            f"{self.input_size}) batches, not {tuple(x.shape)}; build it with "
                            f"optimize(..., input_size={x.shape[-1]}) for that size.")
        return self._run(np.ascontiguousarray(x, dtype=np.float32))

    def __call__(self, x):
        """Outputs of ``x`` (NDArray or numpy) as float32 NDArrays on the CPU: one, or a tuple
        where the MXNet model returns a tuple."""
        out = self.predict_numpy(x)
        if isinstance(out, (list, tuple)):
            return tuple(mx.nd.array(o, dtype="float32") for o in out)
        return mx.nd.array(out, dtype="float32")

