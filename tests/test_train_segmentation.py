"""The segmentation task's pieces one by one: its configuration rules, where its class names
come from, every pair checked once over the ranks, and the three starts (a classifier's
trunk, a segmentation checkpoint of other classes, a published model), each checked array by
array against the file it loads."""
import mxnet as mx
import numpy as np
import pytest

from resnest.gluon import get_model
from resnest.gluon.data.composed import CLASS_NAMES
from resnest.gluon.train import parse_config
from resnest.gluon.train.segmentation import SegmentationTask, SegmentationTrainConfig
from resnest.gluon.utils.distributed import Dist
from resnest.gluon.utils.errors import UserError
from _errors import one_sentence
from _train import ONE


def _cfg(composed, *extra):
    return parse_config(["--data-dir", str(composed), "--model", "fcn_resnest_tiny",
                         "--crop-size", "48", "--base-size", "64", "--batch-size", "4",
                         *extra], SegmentationTrainConfig)


def _arrays(net):
    return {k: v.data().asnumpy().copy() for k, v in net._collect_params_with_prefix().items()}


def test_config_rules():
    base = ["--model", "fcn_resnest_tiny"]
    with pytest.raises(UserError, match="give the data once"):
        parse_config(base, SegmentationTrainConfig)
    with pytest.raises(UserError, match="--train-dir and --val-dir go together"):
        parse_config(base + ["--train-dir", "a"], SegmentationTrainConfig)
    with pytest.raises(UserError, match="use one start, not --pretrained and "
                                        "--pretrained-backbone"):
        parse_config(base + ["--data-dir", "d", "--pretrained", "--pretrained-backbone"],
                     SegmentationTrainConfig)
    with pytest.raises(UserError, match="--norm-layer must be one of bn, syncbn"):
        SegmentationTrainConfig(data_dir="d", norm_layer="gn").check()
    cfg = parse_config(base + ["--data-dir", "d"], SegmentationTrainConfig)
    # GluonCV's recipe: SGD, base 520 / crop 480, aux weight 0.5, no aux unless asked
    assert (cfg.optimizer, cfg.base_size, cfg.crop_size, cfg.aux, cfg.aux_weight) == \
        ("sgd", 520, 480, False, 0.5)
    assert not cfg.starts_from_weights
    assert parse_config(base + ["--data-dir", "d", "--pretrained-backbone"],
                        SegmentationTrainConfig).starts_from_weights


def test_class_names_come_from_the_data(composed_data):
    data = SegmentationTask(_cfg(composed_data)).prepare(ONE, print)
    assert data.class_names == list(CLASS_NAMES) and data.classes == 11
    assert (data.train_samples, data.val_samples) == (64, 5)
    assert data.fingerprints["train_data"].startswith("composed train: 64 pairs, list sha1 ")


def test_a_classifier_checkpoint_starts_the_trunk(composed_data, tmp_path):
    classifier = get_model("resnest_tiny", classes=10)
    classifier.initialize(mx.init.Uniform(1.0))
    classifier.save_parameters(str(tmp_path / "cls.params"))
    saved = mx.nd.load(str(tmp_path / "cls.params"))
    task = SegmentationTask(_cfg(composed_data, "--pretrained-params",
                                 str(tmp_path / "cls.params")))
    data = task.prepare(ONE, print)
    net = task.build_net(data, mx.cpu())
    before, said = _arrays(net), []
    task.start_from_weights(net, data, mx.cpu(), said.append)
    after = _arrays(net)
    trunk = [k for k in after if not k.startswith(("head.", "auxlayer."))]
    assert sorted(trunk) == sorted(k for k in saved if not k.startswith("fc."))
    for key in trunk:
        np.testing.assert_array_equal(after[key], saved[key].asnumpy())
    for key in set(after) - set(trunk):                     # the heads keep their start
        np.testing.assert_array_equal(after[key], before[key])
    assert said == [f"backbone from the classifier {tmp_path / 'cls.params'}; heads "
                    "initialised"]


def test_a_checkpoint_of_other_classes_keeps_its_class_layers_fresh(composed_data, tmp_path):
    other = get_model("fcn_resnest_tiny", classes=4, aux=True)
    other.initialize(mx.init.Uniform(1.0))
    other.save_parameters(str(tmp_path / "seg.params"))
    saved = mx.nd.load(str(tmp_path / "seg.params"))
    task = SegmentationTask(_cfg(composed_data, "--pretrained-params",
                                 str(tmp_path / "seg.params")))       # no --aux: no auxlayer
    data = task.prepare(ONE, print)
    net = task.build_net(data, mx.cpu())
    before = _arrays(net)
    task.start_from_weights(net, data, mx.cpu(), print)
    after = _arrays(net)
    assert not any(k.startswith("auxlayer.") for k in after)
    for key, value in after.items():
        if key.startswith("head.block.4."):                   # 11 classes, not 4: fresh
            assert value.shape[0] == 11
            np.testing.assert_array_equal(value, before[key])
        else:
            np.testing.assert_array_equal(value, saved[key].asnumpy())


def test_pretrained_needs_a_published_segmentation_model(composed_data):
    task = SegmentationTask(_cfg(composed_data, "--pretrained"))
    data = task.prepare(ONE, print)
    with pytest.raises(UserError, match="fcn_resnest_tiny has no published weights.*"
                                        "deeplab_resnest50_ade"):
        task.start_from_weights(task.build_net(data, mx.cpu()), data, mx.cpu(), print)


def test_pretrained_starts_from_the_published_model_with_fresh_class_layers(
        composed_data, tmp_path, monkeypatch):
    """A published ADE20K model (150 classes, with its auxiliary head) fine-tuned on the 11
    classes of the data with --aux: everything but the two class layers comes from the file."""
    from _published import publish_file
    from resnest.gluon.pretrained import SegmentationEval
    published = get_model("deeplab_resnest_tiny", classes=150)
    published.initialize(mx.init.Uniform(1.0))
    published.save_parameters(str(tmp_path / "ade.params"))
    saved = mx.nd.load(str(tmp_path / "ade.params"))
    publish_file(monkeypatch, tmp_path / "home", "deeplab_resnest_tiny",
                 str(tmp_path / "ade.params"), task="segmentation", eval=SegmentationEval(),
                 class_list="ade20k", classes=150)
    cfg = _cfg(composed_data, "--pretrained", "--aux")
    cfg.model = "deeplab_resnest_tiny"
    task = SegmentationTask(cfg)
    data = task.prepare(ONE, print)
    net = task.build_net(data, mx.cpu())
    before, said = _arrays(net), []
    task.start_from_weights(net, data, mx.cpu(), said.append)
    fresh = 0
    for key, value in _arrays(net).items():
        if key.startswith(("head.block.4.", "auxlayer.block.4.")):
            np.testing.assert_array_equal(value, before[key])
            fresh += 1
        else:
            np.testing.assert_array_equal(value, saved[key].asnumpy())
    assert fresh == 4 and "auxlayer.block.4., head.block.4. initialised afresh" in said[0]


class _TwoRanks(Dist):
    """Rank ``rank`` of a pretend 2-rank job whose peer succeeds or fails its share."""

    def __init__(self, rank, peer_ok):
        super().__init__(rank, 2, rank, mx.cpu(), rank == 0)
        self.peer_ok = peer_ok

    def failed_ranks(self, ok, name):
        return sorted(({self.rank} if not ok else set()) |
                      (set() if self.peer_ok else {1 - self.rank}))


def test_every_pair_is_checked_once_over_the_ranks(composed_data, tmp_path):
    """Each rank reads its share of the pairs (rank 0 the first half of the 5 validation
    images, rank 1 the rest); a bad pair stops its rank with its own sentence, and the other
    rank with one naming that rank."""
    import shutil
    from PIL import Image
    root = tmp_path / "broken"
    shutil.copytree(composed_data, root)
    mask = sorted((root / "annotations" / "validation").glob("*.png"))[4]     # rank 1's share
    Image.fromarray(np.asarray(Image.open(mask))[:50]).save(mask)
    task = SegmentationTask(_cfg(root))
    with pytest.raises(UserError) as err:
        task.prepare(_TwoRanks(1, peer_ok=True), print)
    one_sentence(err, mask.stem, "is 64x50 but its image")
    with pytest.raises(UserError) as err:                   # rank 0's share is fine
        task.prepare(_TwoRanks(0, peer_ok=False), print)
    one_sentence(err, "rank(s) 1 found a bad image / mask pair")
    assert task.prepare(_TwoRanks(0, peer_ok=True), print).val_samples == 5
