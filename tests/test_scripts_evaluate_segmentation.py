"""evaluate_segmentation.py on the composed set (real digits on real photos, ADE20K layout):
the exact pixel counts equal numpy's on the model run by hand (MXNet's ToTensor + Normalize,
the whole image), pixAcc / mIoU equal GluonCV's SegmentationMetric fed the same logits, two
Horovod ranks count every image once (the same counts as one process), and a mask of another
size, a label beyond the classes or an image without a mask is one sentence."""
import json
import os
import shutil
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon.data.vision import transforms as T
from PIL import Image

from _errors import one_sentence
from _runs import script, train
from conftest import randomize_bn
from resnest.gluon import UserError, get_model

gluoncv = pytest.importorskip("gluoncv")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)        # GluonCV test.py's Normalize
EVALUATE = script("evaluate_segmentation.py")


@pytest.fixture(scope="module")
def main():
    sys.path.insert(0, os.path.dirname(EVALUATE))
    import evaluate_segmentation
    return evaluate_segmentation.main


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A random 11-class fcn_resnest_tiny (random BN too) saved without a record."""
    mx.random.seed(7)
    net = get_model("fcn_resnest_tiny", classes=11)
    net.initialize(mx.init.Xavier(magnitude=3))
    randomize_bn(net, mx.nd.zeros((1, 3, 32, 32)))
    path = tmp_path_factory.mktemp("seg_weights") / "fcn.params"
    net.save_parameters(str(path))
    return net, str(path)


def _pairs(root):
    images = sorted((root / "images" / "validation").iterdir())
    return [(p, root / "annotations" / "validation" / (p.stem + ".png")) for p in images]


def _args(data, weights_path, out, *extra):
    return ["--model", "fcn_resnest_tiny", "--resume", weights_path, "--data-dir", str(data),
            "--backend", "mxnet", "-j", "0", "--no-progress", "--json", str(out), *extra]


def test_counts_are_numpys_and_scores_gluoncvs(main, weights, composed_data, tmp_path):
    net, path = weights
    assert main(_args(composed_data, path, tmp_path / "ev.json")) == 0
    got = json.loads((tmp_path / "ev.json").read_text())
    metric = gluoncv.utils.metrics.SegmentationMetric(11)
    correct = labeled = 0
    inter, union = np.zeros(11, np.int64), np.zeros(11, np.int64)
    for image, mask in _pairs(composed_data):
        rgb = mx.nd.array(np.asarray(Image.open(image).convert("RGB")), dtype="uint8")
        logits = net(T.Normalize(MEAN, STD)(T.ToTensor()(rgb)).expand_dims(0))[0]
        target = np.asarray(Image.open(mask), np.int64) - 1          # -1: unlabelled
        metric.update(mx.nd.array(target[None]), logits)
        pred = logits[0].asnumpy().argmax(axis=0)
        keep = target >= 0
        correct, labeled = correct + int((pred == target)[keep].sum()), labeled + int(keep.sum())
        for c in range(11):
            p, t = (pred == c) & keep, target == c
            inter[c] += int((p & t).sum())
            union[c] += int((p | t).sum())
    assert got["images"] == 5 and got["protocol"] == "single-scale"
    assert (got["pixels_correct"], got["pixels_labeled"]) == (correct, labeled)
    assert [c["intersection"] for c in got["per_class"]] == inter.tolist()
    assert [c["union"] for c in got["per_class"]] == union.tolist()
    assert 0 < correct < labeled                               # neither trivial nor perfect
    pix_acc, miou = metric.get()
    assert got["pixAcc"] == pytest.approx(100 * pix_acc, abs=1e-4)
    assert got["mIoU"] == pytest.approx(100 * miou, abs=1e-4)
    # two Horovod ranks: every image once, the same exact counts
    train(*_args(composed_data, path, tmp_path / "ev2.json"), ranks=2, script=EVALUATE,
          hooked=False)
    two = json.loads((tmp_path / "ev2.json").read_text())
    assert two["ranks"] == 2 and two["images"] == 5
    assert (two["pixels_correct"], two["pixels_labeled"], two["per_class"]) == \
        (got["pixels_correct"], got["pixels_labeled"], got["per_class"])


def _broken(composed_data, tmp_path, break_it):
    root = tmp_path / "broken"
    shutil.copytree(composed_data, root)
    image, mask = _pairs(root)[2]
    break_it(image, mask)
    return root, image


def test_bad_pairs_are_one_sentence(main, weights, composed_data, tmp_path):
    def smaller(image, mask):
        Image.fromarray(np.asarray(Image.open(mask))[:50]).save(mask)

    def beyond(image, mask):
        labels = np.asarray(Image.open(mask)).copy()
        labels[0, 0] = 12                                   # 11 classes: values 0..11
        Image.fromarray(labels).save(mask)

    def orphan(image, mask):
        mask.unlink()
    cases = [(smaller, ["is 64x50 but its image"]), (beyond, ["12", "11 classes"]),
             (orphan, ["has no mask"])]
    for k, (break_it, words) in enumerate(cases):
        root, image = _broken(composed_data, tmp_path / str(k), break_it)
        with pytest.raises(UserError) as err:
            main(_args(root, weights[1], tmp_path / f"ev{k}.json"))
        one_sentence(err, image.stem, *words)
        assert not (tmp_path / f"ev{k}.json").exists()
