"""Calibration images (:mod:`resnest.gluon.inference.calibration`) from a loader's batches."""
import mxnet as mx

from resnest.gluon.inference import calibration_batches


def test_calibration_batches_take_data_from_loader_tuples():
    batches = [(mx.nd.ones((2, 3, 8, 8)) * i, mx.nd.zeros(2), 2) for i in range(5)]
    out = calibration_batches(batches, max_batches=3)
    assert len(out) == 3
    assert float(out[2][0].mean().asscalar()) == 2.0
    # A smaller (last) batch ends the list: the quantizer binds one shape.
    out = calibration_batches([mx.nd.ones((2, 3, 8, 8)), mx.nd.ones((1, 3, 8, 8))])
    assert len(out) == 1
