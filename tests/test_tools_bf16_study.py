"""tools/bf16_study.py: its graph counts against counts derived by hand from the architecture,
and the oneDNN mechanism it documents (docs/bf16.md), observed through oneDNN's own verbose log.
Both hold on any CPU; nothing here runs a bfloat16 convolution."""
import mxnet as mx
import pytest

from resnest.gluon import get_model
from tools.bf16_study import cast_counts, convert, weight_reorders


@pytest.fixture(scope="module")
def resnest14():
    net = get_model("resnest14", classes=10)
    net.initialize(mx.init.Xavier())
    return net


def test_counts_are_what_the_architecture_predicts(resnest14):
    x = mx.nd.zeros((1, 3, 64, 64))
    got = {form: cast_counts(convert(resnest14, form, x), x)
           for form in ("mxnet-default", "cast-once", "resnest-ops")}
    # Feature-map casts in MXNet's lists: the input, and per split-attention block one before
    # the split (bf16 -> fp32) and one after the weighted sum (fp32 -> bf16): 1 + 4 x 2.
    assert got["mxnet-default"] == {"param_casts": 37, "activation_casts": 24,
                                    "feature_map_casts": 9, "fused_convs": 27,
                                    "fused_convs_fed_by_a_cast": 27}
    assert got["cast-once"] == dict(got["mxnet-default"], param_casts=0,
                                    fused_convs_fed_by_a_cast=0)
    # Small casts, MXNet's lists: per block the pooled splits (to fp32), fc2's output (to fp32
    # for the softmax), the pooled sum (to bf16 for fc1); then the pooled features, the
    # classifier's input and its output: 9 + 4 x 3 + 3 = 24.
    # resnest-ops: split and the weighted sum in bf16, so only the input's cast is full-size;
    # per block fc2's output (to fp32) and the two attention splits (to bf16 for the multiply):
    # 1 + 4 x 3 + 3 = 16.
    assert got["resnest-ops"] == dict(got["cast-once"], activation_casts=16,
                                      feature_map_casts=1)


def test_a_cast_weight_is_reordered_again_at_every_call():
    # MXNet 1.9.1 mkldnn_conv.cc: a BN-folded conv re-initialises when its weight input's
    # version changes, which a cast's output does at every call.
    as_param, as_cast = weight_reorders("param"), weight_reorders("cast")
    assert as_param[0] >= 1 and as_param[1:] == [0, 0, 0]
    assert all(n >= 1 for n in as_cast)
