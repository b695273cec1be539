"""int8 predicts like float32 on real held-out photos, with each backend's default exclusions.

The model is the int8 study's narrow ResNeSt-14 trained on 64-px patches of 17 real photos
(``tests/fixtures/int8_study.params``, made by ``python tools/int8_study.py --save-params
tests/fixtures/int8_study.params``; about 80% held-out top-1). Training it takes four minutes,
and a model trained for one minute is not a model that means something (70% top-1, and its
int8 agreement is 97.5-98.8%), so the trained weights are the fixture. The expected classes
are the float32 model's own predictions, computed here; int8 must agree on >= 99% of 1,020
held-out patches (60 a class) from image regions training never saw.
"""
import os

import mxnet as mx
import pytest

from resnest.gluon.inference import INT8_EXCLUDE, ONNX_INT8_EXCLUDE, default_exclude, optimize

from conftest import FIXTURES

PARAMS = os.path.join(FIXTURES, "int8_study.params")


@pytest.fixture(scope="module")
def study():
    pytest.importorskip("skimage")
    from tools.int8_study import build, logits
    from tools.photos import calibration_patches, patches
    net = build()
    net.load_parameters(PARAMS)
    images, labels = patches(1020, "heldout", 64, seed=123)
    reference = logits(net, images).argmax(1)
    return net, images, labels, reference, calibration_patches(64, 64)


def test_the_float32_model_has_learnt(study):
    _, images, labels, reference, _ = study
    assert images.shape == (1020, 3, 64, 64)
    assert (reference == labels).mean() >= 0.75            # 17 classes: chance is 6%


def test_default_exclusions_are_the_measured_ones():
    assert default_exclude("mxnet") == INT8_EXCLUDE
    assert "splitattentionconv0_" in INT8_EXCLUDE
    assert default_exclude("onnxruntime") == default_exclude("openvino") == ONNX_INT8_EXCLUDE
    assert ONNX_INT8_EXCLUDE == ("conv1conv0_fwd", "dense0_fwd")


@pytest.mark.parametrize("backend", ["mxnet", "onnxruntime", "openvino"])
def test_int8_agrees_with_float32_on_held_out_photos(study, backend):
    if backend != "mxnet":
        pytest.importorskip(backend)
    from tools.int8_study import build, logits
    net, images, labels, reference, calib = study
    copy = build()
    copy.load_parameters(PARAMS)
    fast = optimize(copy, "int8", backend=backend, calib_data=[mx.nd.array(calib)],
                    input_size=64, batch_size=100)
    got = logits(fast, images).argmax(1)
    agreement = (got == reference).mean()
    assert agreement >= 0.99, f"{backend}: {agreement:.4f}"
    assert (got == labels).mean() >= (reference == labels).mean() - 0.01
