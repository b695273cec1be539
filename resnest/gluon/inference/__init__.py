"""Running trained models: the fastest form for a device and engine (:func:`optimize`: MXNet,
onnxruntime or OpenVINO), export (:mod:`.export`: MXNet symbol files, ONNX), checking accuracy
(:mod:`.verify`) and classifying images (:mod:`.predict`).

>>> from resnest.gluon.inference import optimize
>>> fast = optimize(net, "int8", backend="onnxruntime", calib_data=batches)

Importing it starts MXNet, whose thread count is fixed then: scripts call
:func:`resnest.gluon.utils.threads.own_threads` first.
"""
from .backends import AUTO, BACKENDS, CALIB_MODES, DTYPES
from .optimize import INT8_EXCLUDE, ONNX_INT8_EXCLUDE, bfloat16_supported, calibration_arrays, \
    calibration_batches, choose_engine, default_exclude, optimize, spread_batches

__all__ = ["AUTO", "BACKENDS", "CALIB_MODES", "DTYPES", "INT8_EXCLUDE", "ONNX_INT8_EXCLUDE",
           "bfloat16_supported", "calibration_arrays", "calibration_batches", "choose_engine",
           "default_exclude", "optimize", "spread_batches"]
