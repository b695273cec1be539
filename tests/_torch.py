"""Running the PyTorch side of the conversion checks (tools/torch_side.py) in the second
virtual environment, ``.venv-torch`` (``make setup`` builds it). Arrays go back and forth
through files. Missing, the calling test fails under ``make test`` (RESNEST_REQUIRE_REFERENCE=1)
and is skipped, with the reason, under a bare pytest."""
import json
import os
import subprocess

import pytest

from conftest import REPO

TORCH_PYTHON = os.environ.get("RESNEST_TORCH_PYTHON",
                              os.path.join(REPO, ".venv-torch", "bin", "python"))
SIDE = os.path.join(REPO, "tools", "torch_side.py")


def torch_side(jobs, folder, timeout=900):
    """Run ``jobs`` (see tools/torch_side.py) with torch, timm and the authors' torch code."""
    if not os.path.isfile(TORCH_PYTHON):
        reason = f"the torch environment {TORCH_PYTHON} is not built (make setup builds it)"
        if os.environ.get("RESNEST_REQUIRE_REFERENCE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    path = os.path.join(str(folder), f"jobs-{len(os.listdir(str(folder)))}.json")
    with open(path, "w") as f:
        json.dump({"jobs": [{k: str(v) if isinstance(v, os.PathLike) else v
                             for k, v in job.items()} for job in jobs]}, f)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    done = subprocess.run([TORCH_PYTHON, SIDE, path], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"tools/torch_side.py failed:\n{done.stderr[-3000:]}")


# Ranges for deterministic BN values on either side (tools/torch_side.py draws the same):
# no BN is an identity, and 269 layers deep the logits stay of order 1-100.
BN_RANGES = {"gamma": (0.2, 0.6), "beta": (-0.1, 0.1), "running_mean": (-0.1, 0.1),
             "running_var": (0.5, 1.5)}


def gluon_weights(model, classes, path, seed, size=64, **kwargs):
    """Save deterministic weights of our ``model`` to ``path`` (Xavier, then BN drawn from
    :data:`BN_RANGES`)."""
    import mxnet as mx
    from resnest.gluon import get_model
    mx.random.seed(seed)
    net = get_model(model, classes=classes, **kwargs)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, size, size)))
    for name, param in net._collect_params_with_prefix().items():
        bounds = BN_RANGES.get(name.rsplit(".", 1)[-1])
        if bounds:
            param.set_data(mx.nd.random.uniform(*bounds, shape=param.shape))
    net.save_parameters(str(path))


def logits(model, path, x, classes, **kwargs):
    """Our ``model``'s float64 and float32 logits for ``x`` with the weights of ``path`` (any
    format: loaded through ``get_model(pretrained=path)``)."""
    import mxnet as mx
    from resnest.gluon import get_model
    net = get_model(model, classes=classes, pretrained=str(path), **kwargs)
    l32 = net(mx.nd.array(x, dtype="float32")).asnumpy().astype("float64")
    net.cast("float64")
    l64 = net(mx.nd.array(x, dtype="float64")).asnumpy()
    return l64, l32


def assert_close(got, want, what, f64=True):
    """float64: equal up to rounding (1e-9 of the logits' scale); float32: 1e-4 of it."""
    import numpy as np
    scale = max(1.0, float(np.abs(want).max()))
    err = float(np.abs(got - want).max())
    assert err <= (1e-9 if f64 else 1e-4) * scale, f"{what}: max error {err:.3g}, scale {scale:.3g}"
