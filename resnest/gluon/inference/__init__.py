"""Running trained models: the fastest form for a device and engine (:func:`optimize`: MXNet,
onnxruntime or OpenVINO), export (:mod:`.export`: MXNet symbol files, ONNX) and classifying
images (:func:`predict`).

>>> from resnest.gluon.inference import optimize, predict, PredictConfig
>>> fast = optimize(net, "int8", backend="onnxruntime", calib_data=batches)
>>> for row in predict(PredictConfig("resnest50", ["photos/"])): print(row.image, row.top[0])
"""
from .optimize import AUTO, BACKENDS, DTYPES, INT8_EXCLUDE, ONNX_INT8_EXCLUDE, \
    bfloat16_supported, calibration_arrays, calibration_batches, choose_engine, default_exclude, \
    optimize, spread_batches
from .predict import PredictConfig, Prediction, predict

__all__ = ["AUTO", "BACKENDS", "DTYPES", "choose_engine", "INT8_EXCLUDE", "ONNX_INT8_EXCLUDE", "bfloat16_supported",
           "calibration_arrays", "calibration_batches", "default_exclude", "optimize",
           "spread_batches", "PredictConfig", "Prediction", "predict"]
