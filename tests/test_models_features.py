"""The backbone (``get_model(name, features_only=True)``): its outputs are the classifier's own
intermediate activations, its parameter names the classifier's minus ``fc.*``; it loads the
published weights, dilates, takes SyncBatchNorm and frozen BN, hybridizes, exports to ONNX, and
feeds GluonCV's FCN head as the recipe shows."""
import os
import re

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon.contrib.nn import SyncBatchNorm

from _published import publish
from conftest import REPO, randomize_bn
from resnest.gluon import UserError, get_model, list_models

ALL = (0, 1, 2, 3, 4)
DILATIONS = [{}, dict(dilated=True), dict(dilation=2)]


def _classifier(name, tmp_path, x, **kw):
    """An initialised classifier with random BN statistics, and its weights file."""
    net = get_model(name, classes=5, **kw)
    net.initialize(mx.init.Xavier())
    randomize_bn(net, x)
    path = str(tmp_path / f"{name}.params")
    net.save_parameters(path)
    return net, path


def _stages_by_hand(net, x):
    """The classifier's activations after its stem (before the max-pool) and each stage."""
    acts = [mx.nd.relu(net.bn1(net.conv1(x)))]
    y = net.maxpool(acts[0])
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        y = layer(y)
        acts.append(y)
    return acts


@pytest.mark.parametrize("name,kw", [("resnest_tiny", k) for k in DILATIONS]
                         + [("resnest14", {}), ("resnest50_fast_1s2x40d", dict(dilated=True))])
def test_outputs_are_the_classifiers_own_activations(name, kw, tmp_path):
    x = mx.nd.random.uniform(shape=(2, 3, 40, 48))         # non-square, odd feature sizes
    full, path = _classifier(name, tmp_path, x, **kw)
    want = _stages_by_hand(full, x)
    # The hand-run stages are the classifier's real path: they give its logits.
    logits = full.fc(full.flat(full.avgpool(want[4])))
    np.testing.assert_allclose(logits.asnumpy(), full(x).asnumpy(), rtol=1e-5, atol=1e-6)
    feats = get_model(name, features_only=True, out_indices=ALL, pretrained=path, **kw)
    for hybrid in (False, True):
        if hybrid:
            feats.hybridize()
        got = feats(x)
        assert len(got) == 5
        for i, (g, w) in enumerate(zip(got, want)):
            np.testing.assert_allclose(g.asnumpy(), w.asnumpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=f"output {i}, hybridized={hybrid}")
    # A subset of indices gives the same maps, in increasing order.
    some = get_model(name, features_only=True, out_indices=(3, 1), pretrained=path, **kw)
    got = some(x)
    assert len(got) == 2
    np.testing.assert_allclose(got[1].asnumpy(), want[3].asnumpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in list_models(task="classification")
                                  if n not in ("resnest200", "resnest269")])
def test_parameter_names_are_the_classifiers_without_fc(name):
    def shapes(net):
        return {k: tuple(v.shape) for k, v in net._collect_params_with_prefix().items()}
    full = shapes(get_model(name))
    trunk = {k: v for k, v in full.items() if not k.startswith("fc.")}
    assert len(trunk) == len(full) - 2                      # fc.weight and fc.bias only
    assert shapes(get_model(name, features_only=True)) == trunk
    assert shapes(get_model(name, features_only=True, dilated=True)) == trunk
    # Stages after the last index asked for are not built.
    upto2 = {k: v for k, v in trunk.items() if not re.match(r"layer[34]\.", k)}
    assert shapes(get_model(name, features_only=True, out_indices=(0, 2))) == upto2


@pytest.mark.parametrize("kw,strides", [({}, (2, 4, 8, 16, 32)),
                                        (dict(dilated=True), (2, 4, 8, 8, 8)),
                                        (dict(dilation=2), (2, 4, 8, 16, 16))])
def test_feature_info_states_channels_and_strides(kw, strides):
    net = get_model("resnest_tiny", features_only=True, out_indices=ALL, **kw)
    net.initialize()
    # resnest_tiny: stem width 8 (stem output 2 x 8), stage widths 8, 16, 32, 64 x expansion 4.
    channels = (16, 32, 64, 128, 256)
    assert [(f.channels, f.stride) for f in net.feature_info] == list(zip(channels, strides))
    assert [f.module for f in net.feature_info] == ["stem", "layer1", "layer2", "layer3",
                                                    "layer4"]
    outs = net(mx.nd.zeros((1, 3, 64, 96)))
    assert [o.shape for o in outs] == [(1, c, 64 // s, 96 // s)
                                       for c, s in zip(channels, strides)]
    # ResNeSt-50: the channels every ResNet-50 detector config names (64-wide deep stem).
    r50 = get_model("resnest50", features_only=True, out_indices=ALL, dilation=2)
    assert [(f.channels, f.stride) for f in r50.feature_info] == [
        (64, 2), (256, 4), (512, 8), (1024, 16), (2048, 16)]


def test_published_weights_load_and_only_fc_is_ignored(tmp_path, monkeypatch):
    full, path = publish(monkeypatch, tmp_path / "home")
    feats = get_model("resnest_tiny", features_only=True, pretrained=True)
    arrays = mx.nd.load(str(path))
    assert "fc.weight" in arrays
    for key, param in feats._collect_params_with_prefix().items():
        np.testing.assert_array_equal(param.data().asnumpy(), arrays[key].asnumpy())
    # Every other name and shape is still checked.
    broken = dict(arrays)
    del broken["layer2.0.conv1.weight"]
    mx.nd.save(str(tmp_path / "missing.params"), broken)
    with pytest.raises(UserError, match="1 parameters missing .*layer2.0.conv1.weight"):
        get_model("resnest_tiny", features_only=True, pretrained=str(tmp_path / "missing.params"))
    extra = dict(arrays, **{"head.weight": mx.nd.zeros((2, 2))})
    mx.nd.save(str(tmp_path / "extra.params"), extra)
    with pytest.raises(UserError, match="1 unknown .*head.weight"):
        get_model("resnest_tiny", features_only=True, pretrained=str(tmp_path / "extra.params"))
    other = get_model("resnest14", classes=3)
    other.initialize()
    other.save_parameters(str(tmp_path / "r14.params"))
    with pytest.raises(UserError, match="does not fit model resnest_tiny"):
        get_model("resnest_tiny", features_only=True, pretrained=str(tmp_path / "r14.params"))


def test_backbone_weights_load_back_into_the_classifier_trunk(tmp_path):
    x = mx.nd.random.uniform(shape=(1, 3, 32, 32))
    full, path = _classifier("resnest_tiny", tmp_path, x)
    feats = get_model("resnest_tiny", features_only=True, pretrained=path)
    feats.save_parameters(str(tmp_path / "backbone.params"))
    again = get_model("resnest_tiny", classes=5)
    again.initialize()
    again(x)
    again.load_parameters(str(tmp_path / "backbone.params"), allow_missing=True)
    again.fc.weight.set_data(full.fc.weight.data())
    again.fc.bias.set_data(full.fc.bias.data())
    np.testing.assert_allclose(again(x).asnumpy(), full(x).asnumpy(), rtol=1e-5, atol=1e-6)


def _bn_layers(net):
    found = []
    net.apply(lambda b: found.append(b) if isinstance(b, mx.gluon.nn.BatchNorm) else None)
    return found


@pytest.mark.parametrize("frozen", [True, False])
def test_sync_batchnorm_and_frozen_statistics(frozen):
    net = get_model("resnest_tiny", features_only=True, norm_layer=SyncBatchNorm,
                    norm_kwargs={"num_devices": 1}, use_global_stats=frozen)
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(4, 3, 32, 32))
    randomize_bn(net, x)
    bns = _bn_layers(net)
    assert bns and all(isinstance(b, SyncBatchNorm) for b in bns)
    before = bns[0].running_mean.data().asnumpy().copy()
    infer = net(x)[-1].asnumpy()
    with mx.autograd.record(train_mode=True):
        out = net(x)[-1]
    out.backward()                             # MXNet updates the running statistics here
    train = out.asnumpy()
    moved = not np.allclose(bns[0].running_mean.data().asnumpy(), before)
    same = np.allclose(train, infer, rtol=1e-4, atol=1e-5)
    # Frozen: training mode normalises with the stored statistics and leaves them alone.
    assert (moved, same) == ((False, True) if frozen else (True, False))


def test_onnx_export_gives_every_map_in_onnxruntime(tmp_path):
    pytest.importorskip("onnxruntime")
    from resnest.gluon.inference.export import export_onnx
    from resnest.gluon.inference.onnxruntime import onnx_runner
    x = mx.nd.random.uniform(shape=(2, 3, 64, 64))
    net = get_model("resnest_tiny", features_only=True, out_indices=(0, 2, 4), dilated=True)
    net.initialize(mx.init.Xavier())
    randomize_bn(net, x)
    want = [o.asnumpy() for o in net(x)]
    run = onnx_runner(export_onnx(net, str(tmp_path / "b.onnx"), input_size=64, batch_size=2),
                      threads=1)
    got = run(x.asnumpy())
    assert [g.shape for g in got] == [(2, 16, 32, 32), (2, 64, 8, 8), (2, 256, 8, 8)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_bad_out_indices_are_refused():
    for bad in [(), (5,), (-1, 2)]:
        with pytest.raises(ValueError, match="out_indices"):
            get_model("resnest_tiny", features_only=True, out_indices=bad)
    with pytest.raises(ValueError, match="features_only=True"):
        get_model("resnest_tiny", out_indices=(1, 2))


def _block(page, *needles):
    """The python block of ``page`` (a path in the repo) that holds every one of ``needles``."""
    with open(os.path.join(REPO, page), encoding="utf-8") as f:
        for block in re.findall(r"```python\n(.*?)```", f.read(), re.S):
            if all(n in block for n in needles):
                return block
    pytest.fail(f"no python block with {needles} in {page}")


def _recipe():
    """docs/own-images.md's backbone recipe: the python block that feeds the dilated backbone
    to GluonCV's FCN head."""
    return _block(os.path.join("docs", "own-images.md"), "_FCNHead", "features_only=True")


def test_the_readmes_backbone_lines_give_the_strides_they_say(tmp_path, monkeypatch):
    code = _block("README.md", "features_only=True", "feature_info")
    assert '"resnest50"' in code and "# strides 8, 16, 32" in code
    publish(monkeypatch, tmp_path / "home")             # "published" resnest_tiny weights
    scope = {"images": mx.nd.random.uniform(shape=(1, 3, 64, 64))}
    exec(code.replace('"resnest50"', '"resnest_tiny"'), scope)
    assert [c.shape[2:] for c in (scope["c2"], scope["c3"], scope["c4"])] == \
        [(8, 8), (4, 4), (2, 2)]                        # 64 / 8, 64 / 16, 64 / 32


def test_the_recipe_feeds_gluoncv_fcn_head(tmp_path, monkeypatch):
    pytest.importorskip("gluoncv")
    code = _recipe()
    assert '"resnest50"' in code and "480" in code and "pretrained=True" in code
    publish(monkeypatch, tmp_path / "home")             # "published" resnest_tiny weights
    scope = {}
    exec(code.replace('"resnest50"', '"resnest_tiny"').replace("480", "64"), scope)
    # resnest_tiny's layer4 has 256 channels; dilated, stride 8: 64 / 8 = 8.
    assert scope["c4"].shape == (1, 256, 8, 8)
    assert scope["scores"].shape == (1, 21, 64, 64)
    assert np.isfinite(scope["scores"].asnumpy()).all()
