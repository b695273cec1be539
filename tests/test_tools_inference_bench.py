"""The inference benchmark's candidates (tools/inference_bench.py) live on the device they
are timed on."""
import mxnet as mx

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
