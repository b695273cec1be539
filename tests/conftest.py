"""Shared fixtures: a deterministic RNG per test, the tiny model quick tests use, and access to
the other implementations (the authors' unpacked release, GluonCV) the checks compare with."""
import os
import sys

import mxnet as mx
import numpy as np
import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)                                    # tools/ (reference, timing, ...)

from tools import reference  # noqa: E402


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


def randomize_bn(net, x=None):
    """Give every BN statistic and affine parameter random values so BN is not an identity
    (after a forward pass on ``x`` that finishes deferred initialisation, when given)."""
    if x is not None:
        net(x)
    for name, param in net._collect_params_with_prefix().items():
        if name.rsplit(".", 1)[-1] in ("gamma", "beta", "running_mean", "running_var"):
            param.set_data(mx.nd.random.uniform(0.5, 1.5, shape=param.shape))


def authors_package(module=None):
    """The authors' resnest 0.0.5 Gluon package (unpacked by ``make setup``), or one of its
    modules (``'model_store'``, ``'dropblock'``).

    Missing, the calling test fails under ``make test`` (which sets
    ``RESNEST_REQUIRE_REFERENCE=1``) and is skipped, with the reason, under a bare pytest.
    """
    try:
        return reference.authors_module(module) if module else reference.authors_package()
    except Exception as err:                       # UserError: not unpacked
        if os.environ.get("RESNEST_REQUIRE_REFERENCE") == "1":
            pytest.fail(f"the authors' reference code is required here: {err}")
        pytest.skip(f"the authors' reference code is not available: {err}")


@pytest.fixture(scope="session")
def digits_data(tmp_path_factory):
    """scikit-learn's real digits at 32x32: ``(root, train batches, val batches)``, batches of
    ``(data, label, valid)`` with the published normalisation, decoded once."""
    from resnest.gluon.data import FolderSamples, eval_loader, eval_transform, write_digits
    root = tmp_path_factory.mktemp("digits")
    write_digits(str(root / "images"), size=32)
    transform = eval_transform(crop_size=32, crop_ratio=1.0)
    batches = {}
    for split in ("train", "val"):
        loader = eval_loader(FolderSamples(str(root / "images" / split)), 64, transform,
                             num_workers=0)
        batches[split] = list(loader)
    return root, batches["train"], batches["val"]


@pytest.fixture(scope="session")
def digits_net(digits_data):
    """resnest_tiny trained for a few epochs on the real digits (class-ordered batches are
    shuffled here); about 10 s on 2 cores."""
    from resnest.gluon import get_model
    _, train, _ = digits_data
    images = mx.nd.concat(*[d[:v] for d, _, v in train], dim=0)
    labels = mx.nd.concat(*[y[:v] for _, y, v in train], dim=0)
    mx.random.seed(1)
    net = get_model("resnest_tiny", classes=10)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    trainer = mx.gluon.Trainer(net.collect_params(), "nag",
                               {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    rng = np.random.RandomState(0)
    for _ in range(4):
        order = mx.nd.array(rng.permutation(images.shape[0]))
        for i in range(0, images.shape[0] - 31, 32):
            idx = order[i:i + 32]
            with mx.autograd.record():
                loss = loss_fn(net(images.take(idx)), labels.take(idx))
            loss.backward()
            trainer.step(32)
    return net


@pytest.fixture(scope="session")
def composed_data(tmp_path_factory):
    """The composed real-pixel segmentation set, small: 64 x 64, 64 training and 5 (an odd
    number) validation images of real digits on real photos, ADE20K layout, classes.txt."""
    from resnest.gluon.data import write_composed
    root = tmp_path_factory.mktemp("composed") / "composed"
    write_composed(str(root), size=64, train_images=64, val_images=5, objects=(1, 3),
                   object_size=(16, 40))
    return root
