"""optimize() with backend='onnxruntime' and 'openvino': the same contract as MXNet (float32
NCHW in, float32 NDArray logits out, any batch size), the int8 layers where they belong, and
one-sentence errors for what a backend or this CPU cannot run."""
import sys

import mxnet as mx
import numpy as np
import pytest

from resnest.gluon import UserError, get_model
from resnest.gluon.evaluate import evaluate
from resnest.gluon.inference import optimize

from conftest import randomize_bn

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

ENGINES = ("onnxruntime", "openvino")


@pytest.fixture(scope="module")
def model():
    """A random resnest_tiny with random BN statistics, its input and its MXNet logits."""
    mx.random.seed(3)
    x = mx.nd.random.uniform(-2, 2, shape=(4, 3, 32, 32))
    net = get_model("resnest_tiny", classes=7)
    net.initialize(mx.init.Xavier())
    randomize_bn(net, x)
    return net, x, net(x).asnumpy()


def _one_sentence(err):
    text = str(err.value).replace("e.g. ", "").replace("i.e. ", "")
    assert "\n" not in text and text.endswith(".") and text.count(". ") == 0, text


@pytest.mark.parametrize("backend", ENGINES)
def test_float32_logits_equal_mxnet_at_any_batch_size(model, backend):
    net, x, ref = model
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
def test_the_one_evaluator_runs_a_backend_unchanged(model, backend):
    net, x, ref = model
    labels = mx.nd.array(ref.argsort(axis=1)[:, -2])    # the runner-up class of each image
    loader = [(x, labels, 4), (x, labels, 2)]           # the second batch counts 2 of 4
    fast = optimize(net, "float32", backend=backend, input_size=32, batch_size=4)
    got, want = evaluate(fast, loader), evaluate(net, loader)
    assert (got.correct1, got.correct5, got.total) == (want.correct1, want.correct5, 6)
    assert got.correct1 == 0 and got.correct5 == 6


def _conv_names(net):
    """The MXNet model's own conv and dense layer names, the expected ONNX node names."""
    names = []
    for block in net.collect_params().values():
        if block.name.endswith("_weight") and len(block.shape) in (2, 4):
            names.append(block.name[:-len("_weight")] + "_fwd")
    return names


@pytest.mark.parametrize("backend", ENGINES)
def test_int8_keeps_stem_conv_and_classifier_float32(model, backend):
    net, x, ref = model
    fast = optimize(net, "int8", backend=backend, input_size=32, batch_size=4,
                    calib_data=[x, x * 0.5])
    layers = fast.info["int8_layers"]
    expected = _conv_names(net)                   # 27 convs + the classifier
    assert sorted(layers) == sorted(expected) and len(expected) == 28
    fp32 = sorted(name for name, int8 in layers.items() if not int8)
    assert fp32 == ["resnest_conv1conv0_fwd", "resnest_dense0_fwd"]
    out = fast(x[:3])
    assert out.shape == (3, 7) and out.dtype == np.float32
    if backend == "openvino":                     # what OpenVINO really runs
        from resnest.gluon.inference.openvino import runtime_precisions
        ran = runtime_precisions(fast, 4)
        assert ran["resnest_conv1conv0_fwd"] == "f32" and ran["resnest_dense0_fwd"] == "f32"
        int8 = [n for n, p in ran.items() if p in ("u8", "i8")]
        assert len(int8) == 26 and len(ran) == 28


def test_chunked_calibration_gives_the_ranges_of_one_pass(model, tmp_path, monkeypatch):
    """Calibration runs CALIB_CHUNK images at a time (memory); the QDQ scales and zero points
    must equal those of one pass over every image at once, as min/max over a union should."""
    import onnx
    from onnx import numpy_helper
    from resnest.gluon.inference import quantize
    from resnest.gluon.inference.export import export_onnx
    net, x, _ = model
    fp32 = export_onnx(net, str(tmp_path / "m.onnx"), input_size=32)
    calib = [np.concatenate([x.asnumpy(), 0.5 * x.asnumpy()])]       # 8 images
    ranges, chunked = [], quantize.CALIB_CHUNK
    for chunk in (chunked, 8):
        monkeypatch.setattr(quantize, "CALIB_CHUNK", chunk)
        out = str(tmp_path / f"q{chunk}.onnx")
        quantize.quantize_onnx(fp32, out, calib)
        ranges.append({t.name: numpy_helper.to_array(t) for t in onnx.load(out).graph.initializer
                       if t.name.endswith(("_scale", "_zero_point"))})
    assert chunked < 8 and len(ranges[0]) > 50
    assert ranges[0].keys() == ranges[1].keys()
    for name, value in ranges[0].items():
        np.testing.assert_allclose(value, ranges[1][name], rtol=1e-6, err_msg=name)


def _ov_bf16():
    try:
        from resnest.gluon.inference.openvino import bfloat16_supported
        return bfloat16_supported()
    except UserError:
        return False


@pytest.mark.skipif(not _ov_bf16(), reason="OpenVINO reports no bf16 on this CPU (it needs "
                    "avx512_bf16 or AMX)")
def test_openvino_bfloat16_runs_bf16_and_returns_float32(model):
    from resnest.gluon.inference.openvino import runtime_precisions
    net, x, ref = model
    fast = optimize(net, "bfloat16", backend="openvino", input_size=32, batch_size=4)
    out = fast(x).asnumpy()
    assert out.dtype == np.float32
    # bfloat16 keeps 8 bits of mantissa: about 2-3 significant digits
    np.testing.assert_allclose(out, ref, atol=0.05 * np.abs(ref).max())
    assert "bf16" in set(runtime_precisions(fast, 4).values())


def test_openvino_bfloat16_refused_where_the_cpu_cannot(model, monkeypatch):
    from resnest.gluon.inference import openvino
    monkeypatch.setattr(openvino, "bfloat16_supported", lambda: False)
    with pytest.raises(UserError, match="cannot run bfloat16 on this CPU") as err:
        optimize(model[0], "bfloat16", backend="openvino", input_size=32, batch_size=4)
    _one_sentence(err)


@pytest.mark.parametrize("backend,dtype,message", [
    ("onnxruntime", "bfloat16", "does not run bfloat16"),
    ("openvino", "float16", "does not run float16"),
    ("tensorrt", "float32", "backend must be one of"),
    ("onnxruntime", "int4", "dtype must be one of"),
])
def test_unsupported_backend_dtype_is_one_sentence(model, backend, dtype, message):
    with pytest.raises(UserError, match=message) as err:
        optimize(model[0], dtype, backend=backend, input_size=32, batch_size=4)
    _one_sentence(err)


@pytest.mark.parametrize("backend", ENGINES)
def test_missing_backend_package_is_one_sentence(model, backend, monkeypatch):
    monkeypatch.setitem(sys.modules, backend, None)       # import now raises ImportError
    with pytest.raises(UserError, match=r"pip install resnest\[deploy\]") as err:
        optimize(model[0], "float32", backend=backend, input_size=32, batch_size=4)
    _one_sentence(err)


@pytest.mark.parametrize("backend", ENGINES)
def test_int8_without_calibration_images_and_wrong_size_are_one_sentence(model, backend):
    net, x, _ = model
    with pytest.raises(UserError, match="calibration needs") as err:
        optimize(net, "int8", backend=backend, input_size=32, batch_size=4)
    _one_sentence(err)
    fast = optimize(net, "float32", backend=backend, input_size=32, batch_size=4)
    with pytest.raises(UserError, match=r"takes \(N, 3, 32, 32\)") as err:
        fast(mx.nd.zeros((1, 3, 48, 48)))
