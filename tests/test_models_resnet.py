"""The generic ResNet (:mod:`resnest.gluon.models.resnet`) through its tiny registered
variant: backward reaches every parameter, saved weights load back, the export reloads as a
SymbolBlock, the dilated trunk keeps its resolution, and every option reaches its layer."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from conftest import randomize_bn
from resnest.gluon import get_model


def test_backward_reaches_every_parameter(tiny):
    x = mx.nd.random.uniform(shape=(4, 3, 32, 32))
    y = mx.nd.array([0, 1, 2, 3])
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    for hybrid in (False, True):
        if hybrid:
            tiny.hybridize()
        with autograd.record():
            loss = loss_fn(tiny(x), y)
        loss.backward()
        for name, p in tiny.collect_params().items():
            if p.grad_req != "null":
                assert np.abs(p.grad().asnumpy()).sum() > 0, name


def test_save_load_round_trip(tiny, tmp_path):
    x = mx.nd.random.uniform(shape=(2, 3, 32, 32))
    randomize_bn(tiny, x)
    path = str(tmp_path / "w.params")
    tiny.save_parameters(path)
    other = get_model("resnest_tiny", classes=5, pretrained=path)
    np.testing.assert_array_equal(other(x).asnumpy(), tiny(x).asnumpy())


def test_export_and_symbolblock_imports(tiny, tmp_path):
    x = mx.nd.random.uniform(shape=(2, 3, 32, 32))
    randomize_bn(tiny, x)
    tiny.hybridize()
    want = tiny(x).asnumpy()
    prefix = str(tmp_path / "tiny")
    tiny.export(prefix, epoch=0)
    loaded = mx.gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"],
                                          prefix + "-0000.params")
    np.testing.assert_allclose(loaded(x).asnumpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(dilated=True), dict(dilation=2)])
def test_dilated_backbone_keeps_resolution(kwargs):
    net = get_model("resnest_tiny", **kwargs)
    net.initialize()
    feat = net.layer4(net.layer3(net.layer2(net.layer1(net.maxpool(net.bn1(net.conv1(
        mx.nd.zeros((1, 3, 64, 64)))))))))
    # Output stride 8 (dilated) or 16 (dilation=2) instead of 32.
    assert feat.shape[-1] == (8 if kwargs.get("dilated") else 4)


def test_options_reach_the_layers():
    from mxnet.gluon.contrib.nn import SyncBatchNorm
    net = get_model("resnest_tiny", last_gamma=True, use_global_stats=True,
                    norm_layer=SyncBatchNorm, norm_kwargs={"num_devices": 1}, final_drop=0.3,
                    dropblock_prob=0.1)
    net.initialize()
    assert isinstance(net.bn1, SyncBatchNorm)
    assert net.layer1[0].bn3.gamma.data().asnumpy().max() == 0     # last gamma
    assert net.layer1[0].bn1._kwargs["use_global_stats"] is True
    assert net.drop is not None and net.drop._rate == 0.3
    assert net.layer3[0].dropblock1 is not None and net.layer2[0].dropblock1 is None
