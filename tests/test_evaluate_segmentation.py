"""The segmentation evaluator's pixel counts against GluonCV 0.10.5's own ``batch_pix_accuracy``,
``batch_intersection_union`` and ``SegmentationMetric`` on real masks (the composed digits,
with an unlabelled border), against a mask worked out by hand, and its rules: every image of
a padded loader counted once, counts summed over ranks, labels outside the classes refused."""
import mxnet as mx
import numpy as np
import pytest

from resnest.gluon.evaluate.segmentation import (SegmentationResult, evaluate_segmentation,
                                                 pixel_counts)
from resnest.gluon.utils.errors import UserError
from _train import ONE, PeerDist

K = 11                                     # the composed set: background + 10 digits


@pytest.fixture(scope="module")
def real_masks(tmp_path_factory):
    """Targets (N, H, W) of real composed masks (PNG value - 1), a 3-pixel unlabelled border
    (value 0 -> -1), and scores (N, K, H, W) whose argmax is an imperfect prediction: the
    mask shifted by 2 pixels, with noise."""
    from resnest.gluon.data import write_composed
    from resnest.gluon.data.segmentation import SegmentationSamples
    root = tmp_path_factory.mktemp("composed")
    write_composed(str(root / "c"), size=64, train_images=1, val_images=6,
                   object_size=(16, 40), objects=(2, 4))
    samples = SegmentationSamples(str(root / "c"), "val")
    masks = np.stack([samples.read(i)[1] for i in range(len(samples))]).astype(np.int64)
    masks[:, :3], masks[:, :, -3:] = 0, 0
    targets = masks - 1
    shifted = np.roll(np.maximum(targets, 0), 2, axis=2)
    rng = np.random.RandomState(0)
    scores = rng.randn(len(masks), K, 64, 64) + 2.5 * np.eye(K)[shifted].transpose(0, 3, 1, 2)
    return targets, scores


def test_counts_equal_gluoncvs_functions_and_metric(real_masks):
    from gluoncv.utils.metrics.segmentation import (SegmentationMetric, batch_intersection_union,
                                                    batch_pix_accuracy)
    targets, scores = real_masks
    metric = SegmentationMetric(K)
    ours = SegmentationResult(K)
    for i in range(0, len(targets), 2):                  # batches of 2, as a loader gives
        t, s = mx.nd.array(targets[i:i + 2]), mx.nd.array(scores[i:i + 2])
        correct, labeled = batch_pix_accuracy(s, t)
        inter, union = batch_intersection_union(s, t, K)
        got = pixel_counts(scores[i:i + 2].argmax(axis=1), targets[i:i + 2], K)
        assert got[:2] == (correct, labeled)
        np.testing.assert_array_equal(got[2], inter)
        np.testing.assert_array_equal(got[3], union)
        metric.update(t, s)
        ours.correct += got[0]
        ours.labeled += got[1]
        ours.intersection += got[2]
        ours.union += got[3]
    pix_acc, miou = metric.get()
    assert ours.pixAcc == pix_acc and ours.mIoU == miou             # to the bit
    assert 0.3 < ours.pixAcc < 0.95 and ours.labeled < targets.size  # the border is left out


def test_a_mask_worked_out_by_hand():
    target = np.array([[[0, 0, 1], [1, 2, -1]]])
    pred = np.array([[[0, 1, 1], [2, 2, 0]]])
    correct, labeled, inter, union = pixel_counts(pred, target, 3)
    # five labelled pixels, three right; per class: |pred & label| / |pred | label| over the
    # labelled pixels: class 0 {(0,0)} / {(0,0),(0,1)}, class 1 {(0,2)} / {(0,1),(0,2),(1,0)},
    # class 2 {(1,1)} / {(1,0),(1,1)}
    assert (correct, labeled) == (3, 5)
    assert inter.tolist() == [1, 1, 1] and union.tolist() == [2, 3, 2]
    result = SegmentationResult(3, correct, labeled, inter, union, images=1)
    assert result.pixAcc == pytest.approx(0.6)
    assert result.mIoU == pytest.approx((1 / 2 + 1 / 3 + 1 / 2) / 3)
    assert result.metrics() == {"pixAcc": pytest.approx(60.0),
                                "mIoU": pytest.approx(100 * 4 / 9), "val_samples": 1}


def test_a_class_in_neither_masks_nor_predictions_counts_zero_as_in_gluoncv():
    from gluoncv.utils.metrics.segmentation import SegmentationMetric
    target = np.array([[[0, 1], [1, 1]]])
    metric = SegmentationMetric(3)
    metric.update(mx.nd.array(target), mx.nd.array(np.eye(3)[target].transpose(0, 3, 1, 2)))
    result = SegmentationResult(3, *pixel_counts(target, target, 3), images=1)
    assert result.mIoU == pytest.approx(metric.get()[1]) and result.mIoU == pytest.approx(2 / 3)
    assert result.absent == [2] and result.mIoU_present == pytest.approx(1.0)
    row = result.as_dict()
    assert row["absent_classes"] == ["2"] and row["per_class"][2]["union"] == 0


def test_labels_outside_the_classes_and_other_shapes_are_refused():
    with pytest.raises(UserError, match="label 3 \\(PNG value 4\\), outside the 3 classes"):
        pixel_counts(np.zeros((1, 2, 2)), np.full((1, 2, 2), 3), 3)
    with pytest.raises(UserError, match="label -2"):
        pixel_counts(np.zeros((1, 2, 2)), np.full((1, 2, 2), -2), 3)
    with pytest.raises(UserError, match="predicts class 5"):
        pixel_counts(np.full((1, 2, 2), 5), np.zeros((1, 2, 2)), 3)
    with pytest.raises(UserError, match="every pixel of a mask needs a prediction"):
        pixel_counts(np.zeros((1, 2, 3)), np.zeros((1, 3, 2)), 3)


class _Scores:
    """A "network" whose scores are given: the one-hot of fixed predictions."""

    def __init__(self, preds):
        self.preds = preds

    def __call__(self, data):
        index = int(data[0, 0, 0, 0].asscalar())             # which batch this is
        return (mx.nd.array(np.eye(K)[self.preds[index]].transpose(0, 3, 1, 2)),)


def test_padding_is_not_counted_and_ranks_are_summed(real_masks):
    targets, scores = real_masks
    preds = scores.argmax(axis=1)
    # 5 real images in batches of 2 (the last one padded with a repeat of image 4)
    batches, plan = [], [([0, 1], 2), ([2, 3], 2), ([4, 4], 1)]
    for b, (rows, valid) in enumerate(plan):
        batches.append((mx.nd.full((2, 3, 64, 64), b), mx.nd.array(targets[rows]), valid))
    net = _Scores([preds[rows] for rows, _ in plan])
    alone = evaluate_segmentation(net, batches, K, ONE)
    want = pixel_counts(preds[:5], targets[:5], K)
    assert (alone.correct, alone.labeled, alone.images) == (want[0], want[1], 5)
    np.testing.assert_array_equal(alone.union, want[3])
    # a pretend second rank that counted 7 correct of 9 labelled pixels in 2 images
    peer = np.zeros(5 + 2 * K)
    peer[:3], peer[5 + 1], peer[5 + K + 1] = (7, 9, 2), 7, 9
    both = evaluate_segmentation(net, batches, K, PeerDist(peer))
    assert (both.correct, both.labeled, both.images) == (want[0] + 7, want[1] + 9, 7)
    assert both.intersection[1] == want[2][1] + 7 and both.union[1] == want[3][1] + 9
