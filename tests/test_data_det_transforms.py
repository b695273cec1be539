"""The detection training transform against GluonCV's ``FasterRCNNDefaultTrainTransform`` on
real photos with its random draws fixed, the draws and the batching by hand, and the loader
over detection samples (workers do not change a batch)."""
import mxnet as mx
import numpy as np
import pytest

from resnest.gluon.data.det_samples import DetectionTarget
from resnest.gluon.data.det_transforms import (DetectionEvalSample, DetectionTrainTransform,
                                               TrainDraws, draw_train, pad_batch,
                                               train_transform)
from resnest.gluon.utils.errors import UserError

_BOXES = np.array([[10, 20, 200, 180], [0, 0, 511, 300], [150.5, 60.25, 170.75, 90.5]],
                  np.float32)


def _photo(name):
    import skimage.data
    return np.ascontiguousarray(getattr(skimage.data, name)()[:, :, :3])


@pytest.mark.parametrize("photo", ["astronaut", "coffee", "chelsea"])
@pytest.mark.parametrize("short,max_size,flip", [(200, 333, False), (200, 333, True),
                                                 (150, 1000, True), (640, 800, False)])
def test_train_transform_is_gluoncvs(photo, short, max_size, flip):
    from gluoncv.data.transforms.presets.rcnn import FasterRCNNDefaultTrainTransform
    img = _photo(photo)
    label = np.concatenate([_BOXES, [[0], [3], [1]]], axis=1)
    # GluonCV's draws fixed: a one-value range and a flip probability of 0 or 1.
    gluoncv = FasterRCNNDefaultTrainTransform((short, short), max_size, flip_p=float(flip))
    want_img, want_boxes = gluoncv(mx.nd.array(img, dtype="uint8"), label)
    data, target = train_transform(img, DetectionTarget(_BOXES, np.array([0, 3, 1])),
                                   TrainDraws(short, flip), max_size)
    np.testing.assert_array_equal(data, want_img.asnumpy())
    np.testing.assert_array_equal(target.boxes, want_boxes[:, :4])
    np.testing.assert_array_equal(target.labels, want_boxes[:, 4])
    assert data.dtype == np.float32 and target.boxes.dtype == np.float32


def test_masks_follow_the_image_and_their_boxes():
    img = _photo("coffee")                                      # 400 x 600
    masks = np.zeros((2, 400, 600), np.uint8)
    masks[0, 50:150, 100:300] = 1
    masks[1, 200:390, 520:600] = 1
    boxes = np.array([[100, 50, 299, 149], [520, 200, 599, 389]], np.float32)
    data, target = train_transform(img, DetectionTarget(boxes, np.array([1, 2]), masks),
                                   TrainDraws(200, True), 1000)
    assert target.masks.shape == (2, 200, 300) == (2,) + data.shape[1:]
    for mask, box in zip(target.masks, target.boxes):
        ys, xs = np.nonzero(mask)
        # GluonCV's box flip (W - x2, W - x1) against the mask's own extent, pixel edges.
        np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
                                   box + [0, 0, 1, 0.5], atol=1.0)


def test_draws_cover_the_inclusive_range_and_depend_only_on_the_seed():
    shorts = {draw_train(np.random.RandomState(s), (3, 5)).short for s in range(200)}
    assert shorts == {3, 4, 5}
    flips = [draw_train(np.random.RandomState(s), (3, 5)).flip for s in range(400)]
    assert 150 < sum(flips) < 250
    assert draw_train(np.random.RandomState(1), 7).short == 7
    assert not any(draw_train(np.random.RandomState(s), 7, flip_p=0).flip for s in range(50))
    t = DetectionTrainTransform((100, 140), 200)
    img = _photo("chelsea")
    first = t(img, DetectionTarget(_BOXES[:1], np.array([0])), np.random.RandomState(9))
    again = t(img, DetectionTarget(_BOXES[:1], np.array([0])), np.random.RandomState(9))
    np.testing.assert_array_equal(first[0], again[0])
    with pytest.raises(UserError, match="1 <= low <= high"):
        DetectionTrainTransform((300, 200), 500)


def test_batches_pad_images_with_zero_and_boxes_with_minus_one():
    a = (np.ones((3, 4, 6), np.float32), DetectionTarget(np.ones((2, 4), np.float32),
                                                        np.array([1, 2], np.float32)))
    b = (np.full((3, 5, 3), 2, np.float32), DetectionTarget(np.zeros((0, 4), np.float32),
                                                           np.zeros(0, np.float32)))
    data, (boxes, labels) = pad_batch([a, b])
    assert data.shape == (2, 3, 5, 6)
    assert (data[0, :, :4, :6] == 1).all() and (data[0, :, 4:] == 0).all()
    assert (data[1, :, :, :3] == 2).all() and (data[1, :, :, 3:] == 0).all()
    assert boxes.shape == (2, 2, 4) and (boxes[1] == -1).all() and (boxes[0] == 1).all()
    assert labels.tolist() == [[1, 2], [-1, -1]]
    _, (boxes, labels) = pad_batch([b, b])
    assert boxes.shape == (2, 1, 4) and (labels == -1).all()        # one row at least
    m = np.ones((1, 4, 6), np.uint8)
    _, (_, _, masks) = pad_batch([(a[0], DetectionTarget(a[1].boxes[:1], a[1].labels[:1], m)),
                                  (b[0], DetectionTarget(b[1].boxes, b[1].labels,
                                                         np.zeros((0, 5, 3), np.uint8)))])
    assert masks.shape == (2, 1, 5, 6) and masks.sum() == 24 and masks[0, 0, :4, :6].all()


def test_eval_sample_carries_position_scale_and_size():
    from resnest.gluon.data.detection import detection_eval_transform
    t = DetectionEvalSample(detection_eval_transform(short=200, max_size=333))
    data, meta = t(_photo("coffee"), 7, None)                  # 400 x 600 -> 200 x 300
    assert data.shape == (3, 200, 300) and meta.tolist() == [7, 2.0, 200, 300]


def test_the_loader_batches_detection_samples_alike_with_any_worker_count(tmp_path):
    from resnest.gluon.data.coco import CocoSamples
    from resnest.gluon.data.composed import coco_paths, write_composed
    from resnest.gluon.data.det_samples import DetectionSamples
    from resnest.gluon.data.loaders import PythonLoader, train_plan
    pytest.importorskip("pycocotools")
    root = str(tmp_path / "set")
    write_composed(root, size=96, train_images=6, val_images=2, seed=1, objects=(1, 3),
                   object_size=(20, 40))
    samples = DetectionSamples(CocoSamples(*coco_paths(root, "train")), masks=True)
    transform = DetectionTrainTransform((64, 96), 160)
    runs = []
    for workers in (0, 2):
        loader = PythonLoader(samples, transform, train_plan(len(samples), 2, 1, 2, 3), 2,
                              workers)
        loader.set_epoch(1)
        runs.append([(d.asnumpy(), [t.asnumpy() for t in target], n)
                     for d, target, n in loader])
        loader.close()
    assert len(runs[0]) == 2 and [n for *_, n in runs[0]] == [2, 2]
    for (d0, t0, _), (d1, t1, _) in zip(*runs):
        np.testing.assert_array_equal(d0, d1)
        for a, b in zip(t0, t1):
            np.testing.assert_array_equal(a, b)
    data, (boxes, labels, masks), _ = runs[0][0]
    assert data.shape[0] == 2 and 64 <= min(data.shape[2:]) and max(data.shape[2:]) <= 96
    assert masks.shape[:2] == labels.shape == boxes.shape[:2] and masks.shape[2:] == \
        data.shape[2:]
