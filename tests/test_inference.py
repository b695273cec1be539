"""optimize(): each dtype path returns float32 logits that agree with the float32 model."""
import mxnet as mx
import numpy as np
import pytest

from resnest.gluon import UserError, get_model
from resnest.gluon.inference import calibration_batches, optimize

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
    fast = optimize(b, "float32", input_size=32, batch_size=4)
    out = fast(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.asnumpy(), ref, rtol=1e-4, atol=1e-5)
    # A batch size other than the tuned one still gives the same logits.
    np.testing.assert_allclose(fast(x[:1]).asnumpy(), ref[:1], rtol=1e-4, atol=1e-5)


def test_int8_logits_close_to_float32():
    a, b, x = _pair(size=48, random_bn=False)
    calib = [mx.nd.random.uniform(shape=(4, 3, 48, 48)) for _ in range(3)]
    ref = a(x).asnumpy()
    q = optimize(b, "int8", calib_data=calib, input_size=48, batch_size=4, calib_mode="naive")
    out = q(x).asnumpy()
    assert out.dtype == np.float32 and out.shape == ref.shape
    # An untrained 8-channel net is int8's worst case; a trained model's agreement on real
    # images is checked by the slow test in test_verify.py.
    err = np.abs(out - ref).max() / np.abs(ref).max()
    assert 0 < err < 0.35
    import json
    nodes = json.loads(q._cached_graph[1].tojson())["nodes"]
    convs = [n["name"] for n in nodes if n["op"] == "_sg_mkldnn_conv"]
    # The first stem conv and the 4 x 3 split-attention convs stay float32; the other 14
    # (2 stem, 4 x (1x1 in, 1x1 out), 4 shortcuts) are int8.
    assert len(convs) == 27 and not convs[0].startswith("quantized_")
    assert sum(c.startswith("quantized_") for c in convs) == 14


def test_int8_without_calibration_data_is_a_user_error():
    _, b, _ = _pair()
    with pytest.raises(UserError, match="calib_data"):
        optimize(b, "int8", input_size=32, batch_size=4)


def test_device_dtype_mismatch_is_a_user_error():
    _, b, _ = _pair()
    with pytest.raises(UserError, match="GPU path"):
        optimize(b, "float16", input_size=32, batch_size=4)
    with pytest.raises(UserError, match="dtype must be"):
        optimize(b, "int4", input_size=32, batch_size=4)


def test_calibration_batches_take_data_from_loader_tuples():
    batches = [(mx.nd.ones((2, 3, 8, 8)) * i, mx.nd.zeros(2), 2) for i in range(5)]
    out = calibration_batches(batches, max_batches=3)
    assert len(out) == 3
    assert float(out[2][0].mean().asscalar()) == 2.0
    # A smaller (last) batch ends the list: the quantizer binds one shape.
    out = calibration_batches([mx.nd.ones((2, 3, 8, 8)), mx.nd.ones((1, 3, 8, 8))])
    assert len(out) == 1


def test_bfloat16_runs_or_explains():
    from resnest.gluon.inference import bfloat16_supported
    a, b, x = _pair()
    if not bfloat16_supported():
        with pytest.raises(UserError, match="bfloat16"):
            optimize(b, "bfloat16", input_size=32, batch_size=4)
        return
    ref = a(x).asnumpy()
    out = optimize(b, "bfloat16", input_size=32, batch_size=4)(x).asnumpy()
    assert out.dtype == np.float32
    assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.75
