"""MXNet's bfloat16 conversion keeps the parameters of the low-precision layers in bfloat16,
cast once (resnest/gluon/inference/mxnet.py, docs/bf16.md).

No bfloat16 convolution runs on an AVX2 CPU, so these tests check the converted graph and its
parameters, which do not depend on the CPU: the expected counts are derived by hand from the
architecture, the expected values come from MXNet's own ``amp_cast`` operator.
"""
import json

import mxnet as mx
import numpy as np
import pytest

from mxnet.contrib.amp.amp import bfloat16

from resnest.gluon import get_model
from resnest.gluon.inference.mxnet import convert_low_precision


@pytest.fixture(scope="module")
def resnest14():
    net = get_model("resnest14", classes=10)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    x = mx.nd.zeros((1, 3, 64, 64))
    net(x).wait_to_read()
    return net


def _param_casts(low):
    inputs, sym = low._cached_graph
    nodes = json.loads(sym.tojson(remove_amp_cast=False))["nodes"]
    data = {i.name for i in inputs}
    return [n["name"] for n in nodes if n["op"] == "amp_cast"
            and nodes[n["inputs"][0][0]]["op"] == "null"
            and nodes[n["inputs"][0][0]]["name"] not in data]


def test_mxnet_default_casts_every_parameter_at_every_call(resnest14):
    # resnest14 = stem (3 convs) + 4 bottlenecks x (conv1, split conv, fc1, fc2, conv3) + 4
    # shortcut convs = 27 conv weights; fc1 and fc2 have biases: 8; the classifier: 2.
    low = convert_low_precision(resnest14, "bfloat16", mx.cpu(), cast_params=False)
    assert len(_param_casts(low)) == 27 + 8 + 2


def test_cast_once_leaves_no_parameter_cast_in_the_graph(resnest14):
    low = convert_low_precision(resnest14, "bfloat16", mx.cpu())
    assert _param_casts(low) == []
    ours = resnest14._collect_params_with_prefix()
    theirs = {p.name: p for p in low.collect_params().values()}
    converted = 0
    for name, param in ours.items():
        got = theirs[param.name]
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("gamma", "beta", "running_mean", "running_var"):
            assert got.dtype == np.float32, name         # BN stays float32 (MXNet's rule)
            np.testing.assert_array_equal(got.data().asnumpy(), param.data().asnumpy())
            continue
        # Conv and Dense weights and biases: bfloat16, the very values amp_cast gives.
        # (from the default layout: oneDNN may keep the float32 weights in a blocked one)
        want = mx.nd.amp_cast(mx.nd.array(param.data().asnumpy()), dtype=bfloat16)
        assert got.data().dtype == want.dtype, name
        back = [mx.nd.amp_cast(a, dtype="float32").asnumpy() for a in (got.data(), want)]
        np.testing.assert_array_equal(*back)
        converted += 1
    assert converted == 27 + 8 + 2
