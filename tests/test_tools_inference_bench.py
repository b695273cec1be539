"""The inference benchmark's candidates (tools/inference_bench.py) live on the device they
are timed on; a segmentation model is timed beside GluonCV's own with the same weights."""
import importlib.util

import mxnet as mx
import numpy as np
import pytest

from conftest import authors_package


def test_candidates_live_on_the_device_they_are_timed_on():
    # MXNet's second CPU context stands in for a GPU (benchmark.py --num-gpus): a model left
    # on the default context fails on it, as the authors' baseline did.
    authors_package()
    from tools.inference_bench import build_candidates
    found, skipped = build_candidates("resnest50", 1, 32, ctx=mx.cpu(1), classes=10)
    assert skipped == [] and sorted(c.impl for c in found) == ["authors", "ours"]
    for c in found:
        assert c.fn(c.inputs).context == mx.cpu(1), c.label


def test_a_segmentation_model_is_timed_beside_gluoncvs_with_its_weights():
    """deeplab_resnest50_ade at 48 x 48: GluonCV's own model (built for that size) is the
    baseline, ours (mxnet and onnxruntime engines) carries its weights, so the outputs are
    GluonCV's; the authors, who published no segmentation model, are skipped with the reason."""
    pytest.importorskip("gluoncv")
    from tools.inference_bench import build_candidates
    backends = ["mxnet"] + (["onnxruntime"] if importlib.util.find_spec("onnxruntime") else [])
    found, skipped = build_candidates("deeplab_resnest50_ade", 1, 48, backends=backends,
                                      baselines=("gluoncv", "authors"), classes=None)
    assert [label for label, _ in skipped] == ["authors:deeplab_resnest50_ade"]
    assert "no Gluon segmentation model" in skipped[0][1]
    assert [(c.impl, c.backend) for c in found] == [("gluoncv", "mxnet")] + \
        [("ours", b) for b in backends]
    theirs = found[0].fn(found[0].inputs)
    theirs = (theirs[0] if isinstance(theirs, (list, tuple)) else theirs).asnumpy()
    assert theirs.shape == (1, 150, 48, 48) and theirs.std() > 0
    for c in found[1:]:
        ours = c.fn(c.inputs)
        ours = ours[0] if isinstance(ours, (list, tuple)) else ours
        ours = ours.asnumpy() if hasattr(ours, "asnumpy") else np.asarray(ours)
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())
        assert c.diff == pytest.approx(np.abs(ours - theirs).max(), abs=1e-6)
