"""Every registered ResNeSt variant (:mod:`resnest.gluon.models.resnest`): builds, runs, matches
its published parameter manifest and parameter count, hybridizes to the same logits, and
ResNeSt-50 has the paper's multiply-adds. (The generic network's behaviour:
test_models_resnet.py; equality with the authors' and GluonCV's code: test_tools_reference.py.)

The manifests and parameter counts in ``fixtures/`` are written by
``fixtures/make_fixtures.py`` from the authors' release and GluonCV, not from these models."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

from conftest import FIXTURES, randomize_bn
from resnest.gluon import PRETRAINED, get_model, list_models
from resnest.gluon.flops import count_macs, count_params

BIG = {"resnest200", "resnest269"}
# Task models: tests/test_models_segmentation.py, tests/test_models_detection.py.
CLASSIFIERS = list_models(task="classification")
MODELS = [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in CLASSIFIERS]


def manifest(net):
    return sorted(f"{k} {tuple(v.shape)}" for k, v in net._collect_params_with_prefix().items())


@pytest.mark.parametrize("name", MODELS)
def test_forward_manifest_and_size(name):
    net = get_model(name, classes=7 if name not in PRETRAINED else 1000)
    net.initialize()
    out = net(mx.nd.random.uniform(shape=(2, 3, 32, 32)))
    assert out.shape == (2, 7 if name not in PRETRAINED else 1000)
    assert np.isfinite(out.asnumpy()).all()
    if name in PRETRAINED:
        with open(os.path.join(FIXTURES, "published_params", name + ".txt")) as f:
            assert manifest(net) == [line.strip() for line in f if line.strip()]
        with open(os.path.join(FIXTURES, "param_counts.json")) as f:
            assert count_params(net) == json.load(f)[name]     # the other implementation's
        # ... and the published figure to its 0.01 M.
        assert count_params(net) / 1e6 == pytest.approx(PRETRAINED[name].params_m, abs=0.006)


@pytest.mark.parametrize("name", [n for n in CLASSIFIERS if n not in BIG])
def test_hybridized_equals_imperative(name):
    net = get_model(name, classes=10)
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(2, 3, 40, 48))         # non-square, odd feature sizes
    randomize_bn(net, x)
    want = net(x).asnumpy()
    net.hybridize()
    np.testing.assert_allclose(net(x).asnumpy(), want, rtol=1e-4, atol=1e-5)


def test_resnest50_macs_match_paper():
    net = get_model("resnest50")
    net.initialize()
    assert count_macs(net, 224) / 1e9 == pytest.approx(5.4, abs=0.05)
