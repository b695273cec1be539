"""optimize(): each dtype path returns float32 logits that agree with the float32 model."""
import json

import mxnet as mx
import numpy as np
import pytest

from resnest.gluon import UserError, get_model
from resnest.gluon.inference import bfloat16_supported, calibration_batches, optimize

from conftest import randomize_bn


def _pair(classes=5, size=32, random_bn=True):
    """Two copies of one random resnest_tiny (with non-trivial BN) and an input batch."""
    x = mx.nd.random.uniform(shape=(4, 3, size, size))
    a = get_model("resnest_tiny", classes=classes)
    a.initialize(mx.init.Xavier())
    if random_bn:
        randomize_bn(a, x)
    else:
        a(x)
    b = get_model("resnest_tiny", classes=classes)
    b.initialize()
    b(x)
    for key, param in b._collect_params_with_prefix().items():
        param.set_data(a._collect_params_with_prefix()[key].data())
    return a, b, x


def test_float32_fused_matches_imperative():
    a, b, x = _pair()
    ref = a(x).asnumpy()
    fast = optimize(b, "float32", backend="mxnet", input_size=32, batch_size=4)
    out = fast(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.asnumpy(), ref, rtol=1e-4, atol=1e-5)
    # A batch size other than the tuned one still gives the same logits.
    np.testing.assert_allclose(fast(x[:1]).asnumpy(), ref[:1], rtol=1e-4, atol=1e-5)


def _copy(net, classes=10):
    other = get_model("resnest_tiny", classes=classes)
    other.initialize()
    other(mx.nd.zeros((1, 3, 32, 32)))
    for key, param in other._collect_params_with_prefix().items():
        param.set_data(net._collect_params_with_prefix()[key].data())
    return other


def _agreement(fast, net, batches):
    got = np.concatenate([fast(x).asnumpy()[:v].argmax(1) for x, _, v in batches])
    want = np.concatenate([net(x).asnumpy()[:v].argmax(1) for x, _, v in batches])
    labels = np.concatenate([y.asnumpy()[:v] for _, y, v in batches])
    return (got == want).mean(), (want == labels).mean()


def test_int8_predicts_like_float32_on_real_held_out_digits(digits_net, digits_data):
    _, train, val = digits_data
    calib = train[::5]                                         # every class (class order)
    q = optimize(_copy(digits_net), "int8", backend="mxnet", calib_data=calib, input_size=32,
                 batch_size=64, calib_mode="naive")
    agree, top1 = _agreement(q, digits_net, val)
    assert top1 > 0.8                                          # the float32 model has learnt
    # An 8-channel net at 32 px is int8's hard case: 94-97% measured here; the 99% figure
    # belongs to the 64-px model of the int8 sensitivity study (tests/test_int8.py).
    assert agree >= 0.9, agree
    labels = np.concatenate([y.asnumpy()[:v] for _, y, v in val])
    got = np.concatenate([q(x).asnumpy()[:v].argmax(1) for x, _, v in val])
    assert (got == labels).mean() >= top1 - 0.05
    nodes = json.loads(q._cached_graph[1].tojson())["nodes"]
    convs = [n["name"] for n in nodes if n["op"] == "_sg_mkldnn_conv"]
    # The first stem conv and the 4 x 3 split-attention convs stay float32; the other 14
    # (2 stem, 4 x (1x1 in, 1x1 out), 4 shortcuts) are int8.
    assert len(convs) == 27 and not convs[0].startswith("quantized_")
    assert sum(c.startswith("quantized_") for c in convs) == 14


def test_int8_without_calibration_data_is_a_user_error():
    _, b, _ = _pair()
    with pytest.raises(UserError, match="calib_data"):
        optimize(b, "int8", backend="mxnet", input_size=32, batch_size=4)


def test_device_dtype_mismatch_is_a_user_error():
    _, b, _ = _pair()
    with pytest.raises(UserError, match="GPU path"):
        optimize(b, "float16", backend="mxnet", input_size=32, batch_size=4)
    with pytest.raises(UserError, match="dtype must be"):
        optimize(b, "int4", backend="mxnet", input_size=32, batch_size=4)


def test_calibration_batches_take_data_from_loader_tuples():
    batches = [(mx.nd.ones((2, 3, 8, 8)) * i, mx.nd.zeros(2), 2) for i in range(5)]
    out = calibration_batches(batches, max_batches=3)
    assert len(out) == 3
    assert float(out[2][0].mean().asscalar()) == 2.0
    # A smaller (last) batch ends the list: the quantizer binds one shape.
    out = calibration_batches([mx.nd.ones((2, 3, 8, 8)), mx.nd.ones((1, 3, 8, 8))])
    assert len(out) == 1


@pytest.mark.skipif(bfloat16_supported(), reason="this CPU runs bfloat16 (AVX-512 bf16); "
                    "the refusal is only reachable on CPUs without it")
def test_bfloat16_is_refused_with_one_sentence_where_the_cpu_cannot_run_it():
    _, b, _ = _pair()
    with pytest.raises(UserError, match="bfloat16"):
        optimize(b, "bfloat16", backend="mxnet", input_size=32, batch_size=4)


@pytest.mark.skipif(not bfloat16_supported(), reason="oneDNN cannot run bfloat16 "
                    "convolutions on this CPU (no AVX-512 bf16)")
def test_bfloat16_predicts_like_float32_on_real_held_out_digits(digits_net, digits_data):
    fast = optimize(_copy(digits_net), "bfloat16", backend="mxnet", input_size=32,
                    batch_size=64)
    assert fast(digits_data[2][0][0]).dtype == np.float32
    agree, _ = _agreement(fast, digits_net, digits_data[2])
    assert agree >= 0.97, agree
