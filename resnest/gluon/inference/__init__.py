"""Running trained models: the fastest form for a device (:func:`optimize`), export
(:mod:`.export`: MXNet symbol files, ONNX) and classifying images (:func:`predict`).

>>> from resnest.gluon.inference import optimize, predict, PredictConfig
>>> fast = optimize(net, "int8", calib_data=batches)
>>> for row in predict(PredictConfig("resnest50", ["photos/"])): print(row.image, row.top[0])
"""
from .optimize import DTYPES, INT8_EXCLUDE, INT8_EXCLUDE_FAST, bfloat16_supported, \
    calibration_batches, optimize
from .predict import PredictConfig, Prediction, predict

__all__ = ["DTYPES", "INT8_EXCLUDE", "INT8_EXCLUDE_FAST", "bfloat16_supported",
           "calibration_batches", "optimize", "PredictConfig", "Prediction", "predict"]
