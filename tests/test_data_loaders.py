"""The loaders (:mod:`resnest.gluon.data.loaders`): even batches on every rank, reproducible
augmentation that does not depend on the workers, every validation image counted once, and a
damaged pack refused naming its record. Data: real photo crops packed by our packer.

With (image, mask) samples: batches are the joint transform applied with each sample's own
seed (the expected arrays come from calling the transform directly on the pairs as PIL reads
them), the same for any worker count, every evaluation image once over the ranks, and images
of different sizes refused in one sentence instead of a stacking error."""
import os

import numpy as np
import pytest
from PIL import Image

mx = pytest.importorskip('mxnet')

from _images import photos  # noqa: E402
from _records import damaged_copy, keys, offsets  # noqa: E402
from resnest.gluon.data import eval_loader, eval_transform, train_loader  # noqa: E402
from resnest.gluon.data.autoaugment import ImageNetPolicy  # noqa: E402
from resnest.gluon.data.loaders import PythonLoader, train_plan  # noqa: E402
from resnest.gluon.data.seg_transforms import (SegmentationEvalTransform,  # noqa: E402
                                               SegmentationTrainTransform)
from resnest.gluon.data.segmentation import SegmentationSamples  # noqa: E402
from resnest.gluon.utils.errors import UserError  # noqa: E402

NUM = 21                                   # the photo crops of conftest.photo_rec


def labels_of(loader):
    out = []
    for data, label, valid in loader:
        out.append((label.asnumpy()[:valid].tolist(), data.asnumpy()))
    return out


@pytest.mark.parametrize('backend', ['rec', 'python'])
def test_train_loader_even_batches_and_reproducible(photo_rec, backend):
    seen, lengths = [], set()
    for rank in range(3):
        loader = train_loader(photo_rec, 4, input_size=32, rank=rank, num_ranks=3, seed=1,
                              num_workers=1, backend=backend)
        loader.set_epoch(4)
        first = labels_of(loader)
        lengths.add((len(loader), len(first), loader.num_samples))
        assert first[0][1].shape == (4, 3, 32, 32) and first[0][1].dtype == np.float32
        assert all(len(lab) == 4 for lab, _ in first)
        loader.set_epoch(4)
        again = labels_of(loader)
        assert all(np.array_equal(a[1], b[1]) and a[0] == b[0] for a, b in zip(first, again))
        loader.set_epoch(4, start_batch=1)
        skipped = labels_of(loader)
        assert len(skipped) == len(first) - 1 and np.array_equal(skipped[0][1], first[1][1])
        seen.extend(sum((lab for lab, _ in first), []))
    assert len(lengths) == 1
    assert set(seen) == {0.0, 1.0, 2.0}


def test_python_train_loader_independent_of_workers_and_epoch_changes(photo_rec):
    def batches(workers, epoch):
        loader = train_loader(photo_rec, 4, input_size=32, seed=3, num_workers=workers,
                              backend='python', auto_aug=True)
        loader.set_epoch(epoch)
        return labels_of(loader)
    one, two = batches(1, 0), batches(2, 0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(one, two))
    assert not np.array_equal(one[0][1], batches(1, 1)[0][1])


def test_val_loader_counts_every_image_once(photo_rec):
    labels = []
    for ranks in (1, 3):
        per_rank = []
        for rank in range(ranks):
            loader = eval_loader(photo_rec, 5, eval_transform(crop_size=32), rank=rank,
                                 num_ranks=ranks, num_workers=1)
            got = labels_of(loader)
            per_rank.append(len(got))
            assert sum(len(lab) for lab, _ in got) == loader.num_samples
            labels.append(sum((lab for lab, _ in got), []))
        assert len(set(per_rank)) == 1
    assert sorted(labels[0]) == sorted(labels[1] + labels[2] + labels[3])
    assert len(labels[0]) == NUM


def test_bgr_input_gives_what_rgb_input_gives():
    from resnest.gluon.data.loaders import TrainTransform
    rgb = np.ascontiguousarray(photos()[0][:200, :300])
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    for seed in range(60):                        # every sub-policy, Color and Contrast too
        a = ImageNetPolicy()(rgb, np.random.RandomState(seed))
        b = ImageNetPolicy(bgr=True)(bgr, np.random.RandomState(seed))
        assert np.array_equal(a, b[:, :, ::-1])
    for jitter in (0.4, 0):
        t_rgb = TrainTransform(64, jitter, 0.1, ImageNetPolicy())
        t_bgr = TrainTransform(64, jitter, 0.1, ImageNetPolicy(bgr=True), bgr=True)
        for seed in range(5):
            diff = t_rgb(rgb, np.random.RandomState(seed)) - t_bgr(bgr,
                                                                   np.random.RandomState(seed))
            assert np.abs(diff).max() < 1e-4


@pytest.mark.parametrize('backend', ['rec', 'python'])
def test_damaged_record_header_refused_at_start_naming_record_and_byte(photo_rec, tmp_path,
                                                                      backend):
    def smash(data, offsets):
        data[offsets[7]:offsets[7] + 4] = b'\0\0\0\0'   # the 8th record's magic word
    bad = damaged_copy(photo_rec[:-4], str(tmp_path / 'smashed'), edit_rec=smash) + '.rec'
    key, offset = keys(photo_rec[:-4])[7], offsets(photo_rec[:-4])[7]
    with pytest.raises(UserError) as err:
        train_loader(bad, 4, input_size=32, num_workers=1, backend=backend)
    msg = str(err.value)
    assert f'record {key} of the .idx' in msg and f'byte {offset}' in msg
    assert bad in msg and f'im2rec.py --check {bad[:-4]}' in msg
    with pytest.raises(UserError, match='no record starts'):
        eval_loader(bad, 4, eval_transform(crop_size=32), num_workers=1)


def test_python_path_decode_failure_is_one_sentence_from_a_worker(photo_rec, tmp_path):
    def smash(data, offsets):
        # record 6's JPEG start-of-image marker: the record parses but the image cannot decode
        pos = data.find(b'\xff\xd8', offsets[6])
        data[pos:pos + 4] = b'\0\0\0\0'
    bad = damaged_copy(photo_rec[:-4], str(tmp_path / 'soi'), edit_rec=smash) + '.rec'
    key, offset = keys(photo_rec[:-4])[6], offsets(photo_rec[:-4])[6]
    for workers in (1, 2):
        loader = eval_loader(bad, 4, eval_transform(crop_size=32), num_workers=workers)
        with pytest.raises(UserError) as err:
            list(loader)
        msg = str(err.value)
        assert f'record {key} of {bad} (at byte {offset})' in msg
        assert f'im2rec.py --check {bad[:-4]}' in msg and '\n' not in msg
        loader.close()


def test_the_shared_digits_val_pack_feeds_every_image_once_at_32_px(digits):
    """The suite's digits pack (conftest.digits, packed by our packer) through the eval
    loader: every held-out digit once, with its label (scikit-learn's class counts)."""
    from sklearn.datasets import load_digits
    loader = eval_loader(digits.val_rec, 64, eval_transform(crop_size=32), num_workers=1)
    counts = np.zeros(10)
    for data, label, valid in loader:
        assert data.shape[1:] == (3, 32, 32)
        np.add.at(counts, label.asnumpy()[:valid].astype(int), 1)
    want = [int(round(0.2 * n)) for n in np.bincount(load_digits().target)]
    assert counts.tolist() == want


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
