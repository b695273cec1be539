"""Running trained models: the fastest form for a device (:func:`optimize`) and export
(:mod:`.export`: MXNet symbol files, ONNX).

>>> from resnest.gluon.inference import optimize
>>> fast = optimize(net, "int8", calib_data=batches)
"""
from .optimize import DTYPES, INT8_EXCLUDE, INT8_EXCLUDE_FAST, bfloat16_supported, \
    calibration_batches, optimize

__all__ = ["DTYPES", "INT8_EXCLUDE", "INT8_EXCLUDE_FAST", "bfloat16_supported",
           "calibration_batches", "optimize"]
