"""The Python loader with (image, mask) samples: batches are the joint transform applied with
each sample's own seed (the expected arrays come from calling the transform directly on the
pairs as PIL reads them), the same for any worker count, every evaluation image once over the
ranks, and images of different sizes refused in one sentence instead of a stacking error."""
import os

import numpy as np
import pytest
from PIL import Image

from resnest.gluon.data.loaders import PythonLoader, eval_loader, train_plan
from resnest.gluon.data.seg_transforms import (SegmentationEvalTransform,
                                               SegmentationTrainTransform)
from resnest.gluon.data.segmentation import SegmentationSamples
from resnest.gluon.utils.errors import UserError


def _pairs(root, shapes):
    """images/ + masks/ of real photo crops, masks from their grey levels (values 0..4)."""
    import skimage.data
    photos = (skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea())
    os.makedirs(root / "images")
    os.makedirs(root / "masks")
    for i, (h, w) in enumerate(shapes):
        img = np.ascontiguousarray(photos[i % 3][:h, :w])
        Image.fromarray(img).save(root / "images" / f"p{i}.png")
        Image.fromarray((img.mean(axis=2) * 5 / 256).astype(np.uint8)).save(
            root / "masks" / f"p{i}.png")
    return SegmentationSamples(str(root), classes=4)


def _batches(loader, epoch=0):
    loader.set_epoch(epoch)
    return [(d.asnumpy(), t.asnumpy(), v) for d, t, v in loader]


def test_training_batches_are_the_joint_transform_with_each_samples_seed(tmp_path):
    samples = _pairs(tmp_path, [(60, 80)] * 5)
    transform = SegmentationTrainTransform(64, 48)
    plan = train_plan(len(samples), 2, 0, 1, seed=3)
    alone = _batches(PythonLoader(samples, transform, plan, 2, 0), epoch=1)
    pooled = PythonLoader(samples, transform, plan, 2, 2)
    try:
        workers = _batches(pooled, epoch=1)
    finally:
        pooled.close()
    items, valid = plan(1)
    assert len(alone) == 3 and [v for _, _, v in alone] == valid
    for (data, target, _), (data2, target2, _) in zip(alone, workers):
        np.testing.assert_array_equal(data, data2)
        np.testing.assert_array_equal(target, target2)
    for k, (position, seed) in enumerate(items):
        img = np.asarray(Image.open(samples.items[position][0]).convert("RGB"))
        mask = np.asarray(Image.open(samples.items[position][1]))
        want_data, want_target = transform(img, mask, np.random.RandomState(seed))
        data, target, _ = alone[k // 2]
        np.testing.assert_array_equal(data[k % 2], want_data)
        np.testing.assert_array_equal(target[k % 2], want_target)
        assert target.dtype == np.float32 and target.min() >= -1


def test_evaluation_reads_every_pair_once_over_ranks(tmp_path):
    samples = _pairs(tmp_path, [(40, 56)] * 5)
    seen = []
    for rank in range(2):
        loader = eval_loader(samples, 2, SegmentationEvalTransform(), rank, 2, num_workers=0)
        for data, target, valid in loader:
            assert data.shape == (2, 3, 40, 56) and target.shape == (2, 40, 56)
            seen += [t for t in target.asnumpy()[:valid]]
    want = [np.asarray(Image.open(m), np.float32) - 1 for _, m in samples.items]
    assert len(seen) == 5
    for got, expected in zip(seen, want):
        np.testing.assert_array_equal(got, expected)


def test_images_of_different_sizes_in_one_batch_are_one_sentence(tmp_path):
    samples = _pairs(tmp_path, [(40, 56), (48, 40)])
    loader = eval_loader(samples, 2, SegmentationEvalTransform(), num_workers=0)
    with pytest.raises(UserError, match="images of different sizes cannot share a batch"):
        list(loader)
    assert len(list(eval_loader(samples, 1, SegmentationEvalTransform(), num_workers=0))) == 2
