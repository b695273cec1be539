"""Shared set-ups: a deterministic RNG per test, the tiny model quick tests use, access to the
other implementations (the authors' unpacked release, GluonCV) the checks compare with, the
real data every data test shares (the digits, packed; photo crops, packed), a model trained
on the digits, and the shared reference training runs."""
import os
import shutil
import sys
import types

import mxnet as mx
import numpy as np
import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)                                    # tools/ (reference, timing, ...)

from tools import reference  # noqa: E402

try:
    from hypothesis import HealthCheck, settings as _hypothesis_settings
except ImportError:                                  # the `test` extra is not installed
    _hypothesis_settings = None
else:
    # The property-based attacks on the invariants (tests/test_invariants_*.py): `ci` is few
    # examples drawn the same way on every run (not flaky), `nightly` many and fresh ones
    # (HYPOTHESIS_PROFILE=nightly, see CONTRIBUTING.md). Examples make real files, so no
    # deadline; hypothesis' database stays out of the repository.
    _QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
              HealthCheck.data_too_large]
    _hypothesis_settings.register_profile(
        "ci", max_examples=12, deadline=None, derandomize=True, database=None,
        suppress_health_check=_QUIET, print_blob=True)
    _hypothesis_settings.register_profile(
        "nightly", max_examples=400, deadline=None, suppress_health_check=_QUIET,
        print_blob=True)
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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


@pytest.fixture(scope="session")
def random_tiny():
    """A random 7-class resnest_tiny whose BN statistics are random too (BN is no identity),
    a batch of 4 inputs and its MXNet logits: ``(net, x, logits)``; for the inference engines'
    tests, which must not change it."""
    from resnest.gluon import get_model
    mx.random.seed(3)
    x = mx.nd.random.uniform(-2, 2, shape=(4, 3, 32, 32))
    net = get_model("resnest_tiny", classes=7)
    net.initialize(mx.init.Xavier())
    randomize_bn(net, x)
    return net, x, net(x).asnumpy()


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
def photo_rec(tmp_path_factory):
    """21 crops (40x56) of scikit-learn's two sample photos in 3 classes of 7, packed in
    shuffled order by the project's packer: the path of the .rec (with .idx, .lst,
    .classes.txt beside it)."""
    from _images import make_class_tree
    from resnest.gluon.data import pack_records, plan_image_folder
    root = tmp_path_factory.mktemp("photos")
    make_class_tree(str(root / "img"), classes=3, per_class=7, size=(40, 56))
    entries, classes = plan_image_folder(str(root / "img"), shuffle=True)
    pack_records(str(root / "img"), entries, str(root / "d"), classes=classes)
    return str(root / "d.rec")


@pytest.fixture(scope="session")
def awkward_pack(tmp_path_factory):
    """Real photos with every awkward case a collection has (``_images.make_awkward_tree``)
    packed by the project's packer at a shorter side of 64 px: ``(root, good, bad, prefix)``,
    the tree in ``root / 'images'``."""
    from _images import make_awkward_tree
    from resnest.gluon.data import PackOptions, pack_records, plan_image_folder
    root = tmp_path_factory.mktemp("awkward")
    good, bad = make_awkward_tree(str(root / "images"))
    prefix = str(root / "out" / "w1")
    entries, classes = plan_image_folder(str(root / "images"))
    pack_records(str(root / "images"), entries, prefix, PackOptions(resize=64),
                 classes=classes)
    return root, good, bad, prefix


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """The one real-digits set-up of the suite: scikit-learn's 1,797 digits at 32x32 as
    class folders (``images/train``: 1,438, ``images/val``: 359, ``write_digits``' split) and
    both splits packed by the project's packer (``train.rec``, shuffled; ``val.rec``, in
    folder order), with .idx, .lst and .classes.txt beside them. Read it, never write into
    it; :func:`digits_subset` copies a part of it for a test."""
    from resnest.gluon.data import PackOptions, pack_records, plan_image_folder, write_digits
    root = tmp_path_factory.mktemp("digits")
    write_digits(str(root / "images"), size=32)
    for split in ("train", "val"):
        folder = str(root / "images" / split)
        entries, classes = plan_image_folder(folder, shuffle=split == "train")
        pack_records(folder, entries, str(root / split), PackOptions(pass_through=True),
                     classes=classes)
    return types.SimpleNamespace(root=root, images=root / "images", train=root / "images" /
                                 "train", val=root / "images" / "val",
                                 train_rec=str(root / "train.rec"),
                                 val_rec=str(root / "val.rec"))


@pytest.fixture(scope="session")
def digits_small(digits, tmp_path_factory):
    """A spread of the shared digits packs (:func:`digits`): 480 training records (every third,
    about 48 a class) and 100 validation ones, copied record by record with MXNet's own
    reader and writer, for runs that test mechanics, not learning: ``(train.rec, val.rec)``."""
    root = tmp_path_factory.mktemp("digits-small")
    out = []
    for src, n in ((digits.train_rec, 480), (digits.val_rec, 100)):
        reader = mx.recordio.MXIndexedRecordIO(src[:-4] + ".idx", src, "r")
        prefix = str(root / os.path.basename(src)[:-4])
        writer = mx.recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "w")
        keys = sorted(reader.keys)
        for i, k in enumerate(keys[j * len(keys) // n] for j in range(n)):
            writer.write_idx(i, reader.read_idx(k))
        writer.close()
        reader.close()
        shutil.copy(src[:-4] + ".classes.txt", prefix + ".classes.txt")
        out.append(prefix + ".rec")
    return tuple(out)


def digits_subset(digits, dest, classes=range(10), train_per_class=None, val_per_class=None):
    """Copy the first ``train_per_class`` / ``val_per_class`` images (all when None) of each
    digit in ``classes`` from the shared set-up (:func:`digits`) to ``dest/{train,val}/``;
    returns ``dest``."""
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for digit in classes:
            src = digits.images / split / str(digit)
            os.makedirs(os.path.join(dest, split, str(digit)))
            for name in sorted(os.listdir(src))[:count]:
                shutil.copy(src / name, os.path.join(dest, split, str(digit), name))
    return dest


@pytest.fixture(scope="session")
def digits_data(digits):
    """The shared digits (:func:`digits`) decoded once at 32x32: ``(root, train batches, val
    batches)``, batches of ``(data, label, valid)`` with the published normalisation."""
    from resnest.gluon.data import FolderSamples, eval_loader, eval_transform
    transform = eval_transform(crop_size=32, crop_ratio=1.0)
    batches = {}
    for split in ("train", "val"):
        loader = eval_loader(FolderSamples(str(digits.images / split)), 64, transform,
                             num_workers=0)
        batches[split] = list(loader)
    return digits.root, batches["train"], batches["val"]


@pytest.fixture(scope="session")
def reference_runs(tmp_path_factory):
    """The shared uninterrupted training runs (:class:`_runs.ReferenceRuns`)."""
    from _runs import ReferenceRuns
    return ReferenceRuns(tmp_path_factory.mktemp("reference-runs"))


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


def openvino_or_skip():
    """Skip the calling test (or module) unless OpenVINO is installed. It is imported through
    ``import_openvino``, never plainly: a plain ``import openvino`` forks a telemetry process
    from a background thread, which can hang this MXNet process (inference/openvino.py)."""
    from resnest.gluon import UserError
    from resnest.gluon.inference.openvino import import_openvino
    try:
        return import_openvino()
    except UserError:
        pytest.skip("OpenVINO is not installed", allow_module_level=True)


def engine_or_skip(backend):
    """Skip the calling test unless the inference engine ``backend`` is installed (OpenVINO
    through :func:`openvino_or_skip`)."""
    if backend == "openvino":
        return openvino_or_skip()
    return pytest.importorskip(backend)
