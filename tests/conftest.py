"""Shared fixtures: a deterministic RNG per test and the tiny model every quick test uses."""
import os

import mxnet as mx
import numpy as np
import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _seed():
    mx.random.seed(0)
    np.random.seed(0)


@pytest.fixture
def tiny():
    """An initialised ``resnest_tiny`` with 5 classes (fast enough for backward checks)."""
    from resnest.gluon import get_model
    net = get_model("resnest_tiny", classes=5)
    net.initialize(mx.init.Xavier())
    return net


def randomize_bn(net, x):
    """Give every BN statistic and affine parameter random values so BN is not an identity."""
    net(x)
    for name, param in net._collect_params_with_prefix().items():
        if name.rsplit(".", 1)[-1] in ("gamma", "beta", "running_mean", "running_var"):
            param.set_data(mx.nd.random.uniform(0.5, 1.5, shape=param.shape))
