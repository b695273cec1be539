"""Exported symbol+params reload to the same logits; the ONNX export matches in onnxruntime."""
import os
import sys

import mxnet as mx
import numpy as np
import pytest

from resnest.gluon import UserError, get_model
from resnest.gluon.inference.export import export_onnx, export_symbol, load_exported
from resnest.gluon.inference.onnxruntime import onnx_runner

from conftest import randomize_bn


@pytest.fixture
def net_and_x():
    x = mx.nd.random.uniform(shape=(2, 3, 48, 48))
    net = get_model("resnest_tiny", classes=7)
    net.initialize(mx.init.Xavier())
    randomize_bn(net, x)
    return net, x


def test_symbol_export_reloads_at_any_size(tmp_path, net_and_x):
    net, x = net_and_x
    ref = net(x).asnumpy()
    sym, params = export_symbol(net, str(tmp_path / "m"), input_size=48)
    assert os.path.isfile(sym) and os.path.isfile(params)
    back = load_exported(str(tmp_path / "m"))
    np.testing.assert_allclose(back(x).asnumpy(), ref, rtol=1e-5, atol=1e-6)
    # No input size is baked into the graph.
    big = mx.nd.random.uniform(shape=(1, 3, 64, 64))
    np.testing.assert_allclose(back(big).asnumpy(), net(big).asnumpy(), rtol=1e-5, atol=1e-6)


def test_missing_export_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_exported(str(tmp_path / "nothing"))


def test_onnx_matches_mxnet_with_dynamic_batch(tmp_path, net_and_x):
    pytest.importorskip("onnxruntime")
    net, x = net_and_x
    ref = net(x).asnumpy()
    path = export_onnx(net, str(tmp_path / "m.onnx"), input_size=48, batch_size=2)
    run = onnx_runner(path, threads=1)
    np.testing.assert_allclose(run(x.asnumpy()), ref, rtol=1e-4, atol=1e-5)
    # The batch dimension is dynamic.
    assert run(x.asnumpy()[:1]).shape == (1, 7)
    import onnx
    model = onnx.load(path)
    assert model.opset_import[0].version == 13
    # Weights are constants, not inputs: the only input is the image batch.
    assert [i.name for i in model.graph.input] == ["data"]


def test_export_runs_on_an_onnx_without_onnx_mapping(tmp_path, net_and_x, monkeypatch):
    """onnx releases after 1.18 drop ``onnx.mapping``, which MXNet 1.9's exporter imports;
    export_onnx supplies it. Simulated here by hiding the module; the export must still match
    MXNet in onnxruntime, and every node must carry a name (MXNet leaves convs unnamed)."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    monkeypatch.delattr(onnx, "mapping", raising=False)
    monkeypatch.setitem(sys.modules, "onnx.mapping", None)       # import raises ImportError
    net, x = net_and_x
    path = export_onnx(net, str(tmp_path / "m.onnx"), input_size=48, batch_size=2)
    np.testing.assert_allclose(onnx_runner(path, threads=1)(x.asnumpy()), net(x).asnumpy(),
                               rtol=1e-4, atol=1e-5)
    assert onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype("float32")] == onnx.TensorProto.FLOAT
    nodes = onnx.load(path).graph.node
    assert all(node.name for node in nodes)
    convs = [node.name for node in nodes if node.op_type == "Conv"]
    assert convs[0] == "resnest_conv1conv0_fwd" and len(convs) == 27
