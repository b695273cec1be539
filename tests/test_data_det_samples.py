"""Detection samples from COCO-format files against GluonCV's own ``COCODetection`` (its
training boxes, labels and the images it keeps), on the composed real-pixel set; masks against
pycocotools' ``annToMask``."""
import contextlib
import copy
import io
import json
import os

import numpy as np
import pytest

from resnest.gluon.data.coco import CocoSamples
from resnest.gluon.data.composed import DIGIT_NAMES, coco_paths, write_composed
from resnest.gluon.data.det_samples import DetectionSamples
from resnest.gluon.utils.errors import UserError
from _errors import one_sentence

pytest.importorskip("pycocotools")


@pytest.fixture(scope="module")
def composed(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("composed") / "set")
    write_composed(root, size=128, train_images=8, val_images=4, seed=5, objects=(2, 5),
                   object_size=(24, 64))
    return root


def _with_awkward_records(composed, tmp_path):
    """The training file plus what COCO allows and training must leave out: a crowd region,
    an annotation of zero area, a box reaching over the border, and an image without any
    annotation (a copy of image 1's file)."""
    ann_file, images = coco_paths(composed, "train")
    data = json.load(open(ann_file))
    anns = data["annotations"]
    crowd, flat, wide = (copy.deepcopy(anns[i]) for i in range(3))
    next_id = max(a["id"] for a in anns) + 1
    crowd.update(id=next_id, iscrowd=1)
    flat.update(id=next_id + 1, area=0)
    wide.update(id=next_id + 2, bbox=[100.0, 3.5, 28.6, 40.0])        # to x = 128.6 > W
    anns += [crowd, flat, wide]
    empty = dict(data["images"][0], id=99, file_name="empty.jpg")
    data["images"].append(empty)
    os.symlink(os.path.join(images, data["images"][0]["file_name"]),
               os.path.join(str(tmp_path), "empty.jpg"))
    for name in os.listdir(images):
        os.symlink(os.path.join(images, name), os.path.join(str(tmp_path), name))
    path = str(tmp_path / "instances.json")
    json.dump(data, open(path, "w"))
    return path, str(tmp_path), data


def _gluoncv_labels(data, images, tmp_path):
    """GluonCV's training labels ``[x1, y1, x2, y2, class]`` per kept image, by its own
    ``COCODetection(use_crowd=False)`` (the training script's) on the digits' categories."""
    from gluoncv.data import COCODetection

    class Digits(COCODetection):
        CLASSES = list(DIGIT_NAMES)
    root = tmp_path / "gluoncv"
    (root / "annotations").mkdir(parents=True)
    os.symlink(images, str(root / "train"))
    data = copy.deepcopy(data)
    for img in data["images"]:
        img["coco_url"] = f"http://images.example/train/{img['file_name']}"
    json.dump(data, open(root / "annotations" / "instances_train.json", "w"))
    with contextlib.redirect_stdout(io.StringIO()):
        ds = Digits(root=str(root), splits=("instances_train",), use_crowd=False)
    return {os.path.basename(p): np.array(lab) for p, lab in zip(ds._items, ds._labels)}


def test_training_targets_are_gluoncvs_coco_labels(composed, tmp_path):
    path, images, data = _with_awkward_records(composed, tmp_path)
    samples = DetectionSamples(CocoSamples(path, images), training=True)
    want = _gluoncv_labels(data, images, tmp_path)
    got = {}
    for position in range(len(samples)):
        img, target = samples.read(position)
        assert img.shape == (128, 128, 3) and img.dtype == np.uint8
        got[os.path.basename(samples.image_path(position))] = np.concatenate(
            [target.boxes, target.labels[:, None]], axis=1)
    assert sorted(got) == sorted(want) and "empty.jpg" not in got
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-4, err_msg=name)
    assert samples.left_out == 1
    # By hand: the wide box's corner (min(W - 1, 100 + 28.6 - 1), 3.5 + 40 - 1).
    wide = data["annotations"][-1]
    image = next(i for i in data["images"] if i["id"] == wide["image_id"])
    assert [127.0, 42.5] in got[image["file_name"]][:, [2, 3]].tolist()


def test_evaluation_samples_are_every_image_in_id_order(composed, tmp_path):
    path, images, data = _with_awkward_records(composed, tmp_path)
    samples = DetectionSamples(CocoSamples(path, images), training=False)
    assert len(samples) == len(data["images"])
    assert [samples.image_id(i) for i in range(len(samples))] == sorted(
        img["id"] for img in data["images"])
    img, position = samples.read(3)
    assert position == 3 and img.shape == (128, 128, 3)


def test_masks_are_annToMask_of_the_kept_annotations(composed):
    coco = CocoSamples(*coco_paths(composed, "train"))
    samples = DetectionSamples(coco, training=True, masks=True)
    _, target = samples.read(2)
    anns = coco.annotations(samples.indices[2])
    want = np.stack([coco.coco.annToMask(a) for a in anns])
    np.testing.assert_array_equal(target.masks, want)
    assert target.masks.shape[0] == len(target.boxes) == len(anns)


def test_a_file_without_any_box_to_train_on_is_one_sentence(composed, tmp_path):
    ann_file, images = coco_paths(composed, "train")
    data = json.load(open(ann_file))
    for ann in data["annotations"]:
        ann["iscrowd"] = 1
    path = str(tmp_path / "crowds.json")
    json.dump(data, open(path, "w"))
    with pytest.raises(UserError) as err:
        DetectionSamples(CocoSamples(path, images), training=True)
    one_sentence(err, path, "no image with a box")
