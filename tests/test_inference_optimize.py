"""optimize() (:mod:`resnest.gluon.inference.optimize`): one contract for every engine
(float32 NCHW in, float32 NDArray logits out, any batch size, the one evaluator runs it), and
one-sentence errors for what a backend, a dtype or this machine cannot run."""
import sys

import mxnet as mx
import numpy as np
import pytest

from _errors import one_sentence
from conftest import engine_or_skip
from resnest.gluon import UserError
from resnest.gluon.evaluate import evaluate
from resnest.gluon.inference import optimize

ENGINES = ("onnxruntime", "openvino")


@pytest.mark.parametrize("backend", ENGINES)
def test_float32_logits_equal_mxnet_at_any_batch_size(random_tiny, backend):
    engine_or_skip(backend)
    net, x, ref = random_tiny
    fast = optimize(net, "float32", backend=backend, input_size=32, batch_size=4)
    out = fast(x)
    assert isinstance(out, mx.nd.NDArray) and out.dtype == np.float32
    np.testing.assert_allclose(out.asnumpy(), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    for batch in (1, 3, 6):                      # other batch sizes, numpy or NDArray input
        data = mx.nd.concat(x, x, dim=0)[:batch]
        want = np.concatenate([ref, ref])[:batch]
        np.testing.assert_allclose(fast(data.asnumpy()).asnumpy(), want, rtol=1e-4,
                                   atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("backend", ENGINES)
def test_the_one_evaluator_runs_a_backend_unchanged(random_tiny, backend):
    engine_or_skip(backend)
    net, x, ref = random_tiny
    labels = mx.nd.array(ref.argsort(axis=1)[:, -2])    # the runner-up class of each image
    loader = [(x, labels, 4), (x, labels, 2)]           # the second batch counts 2 of 4
    fast = optimize(net, "float32", backend=backend, input_size=32, batch_size=4)
    got, want = evaluate(fast, loader), evaluate(net, loader)
    assert (got.correct1, got.correct5, got.total) == (want.correct1, want.correct5, 6)
    assert got.correct1 == 0 and got.correct5 == 6


@pytest.mark.parametrize("backend,dtype,message", [
    ("onnxruntime", "bfloat16", "does not run bfloat16"),
    ("openvino", "float16", "does not run float16"),
    ("tensorrt", "float32", "backend must be one of"),
    ("onnxruntime", "int4", "dtype must be one of"),
])
def test_unsupported_backend_dtype_is_one_sentence(random_tiny, backend, dtype, message):
    with pytest.raises(UserError, match=message) as err:
        optimize(random_tiny[0], dtype, backend=backend, input_size=32, batch_size=4)
    one_sentence(err)


@pytest.mark.parametrize("backend", ENGINES)
def test_missing_backend_package_is_one_sentence(random_tiny, backend, monkeypatch):
    monkeypatch.setitem(sys.modules, backend, None)       # import now raises ImportError
    with pytest.raises(UserError, match=r"pip install resnest\[deploy\]") as err:
        optimize(random_tiny[0], "float32", backend=backend, input_size=32, batch_size=4)
    one_sentence(err)


@pytest.mark.parametrize("backend", ENGINES)
def test_int8_without_calibration_images_and_wrong_size_are_one_sentence(random_tiny, backend):
    engine_or_skip(backend)
    net, x, _ = random_tiny
    with pytest.raises(UserError, match="calibration needs") as err:
        optimize(net, "int8", backend=backend, input_size=32, batch_size=4)
    one_sentence(err)
    fast = optimize(net, "float32", backend=backend, input_size=32, batch_size=4)
    with pytest.raises(UserError, match=r"takes \(N, 3, 32, 32\)") as err:
        fast(mx.nd.zeros((1, 3, 48, 48)))


def test_int8_without_calibration_data_is_a_user_error(random_tiny):
    with pytest.raises(UserError, match="calib_data") as err:
        optimize(random_tiny[0], "int8", backend="mxnet", input_size=32, batch_size=4)
    one_sentence(err)


def test_device_dtype_mismatch_is_a_user_error(random_tiny):
    with pytest.raises(UserError, match="GPU path"):
        optimize(random_tiny[0], "float16", backend="mxnet", input_size=32, batch_size=4)
    with pytest.raises(UserError, match="dtype must be"):
        optimize(random_tiny[0], "int4", backend="mxnet", input_size=32, batch_size=4)
