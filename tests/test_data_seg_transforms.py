"""The segmentation transforms against GluonCV 0.10.5's own (``gluoncv/data/segbase.py``).

GluonCV draws from Python's ``random``; the tests replace that module inside ``segbase`` by one
that answers ``random()`` and ``randint(a, b)`` from a ``numpy.random.RandomState``, and give
our :func:`draw_train` a RandomState of the same seed. Both then take their draws from the very
same stream, each computing its own bounds, so the outputs agree only if our draws come in
GluonCV's order with GluonCV's bounds and the transform does what GluonCV's does: the arrays
are compared exactly, on real photos with a real-photo-derived label map.
"""
import inspect

import numpy as np
import pytest
from PIL import Image

from resnest.gluon.data.seg_transforms import (draw_train, mask_target, train_sync_transform,
                                               val_sync_transform)
from resnest.gluon.pretrained import SegmentationEval

segbase = pytest.importorskip("gluoncv.data.segbase")


class _StreamRandom:
    """Python's ``random`` API on a numpy RandomState (``randint`` is inclusive in Python)."""

    def __init__(self, rng):
        self.rng = rng

    def random(self):
        return self.rng.random_sample()

    def randint(self, low, high):
        return int(self.rng.randint(low, high + 1))


def _photos():
    import skimage.data
    chelsea = skimage.data.chelsea()                          # 300 x 451, landscape
    coffee = np.ascontiguousarray(skimage.data.coffee().transpose(1, 0, 2))  # 600 x 400
    astronaut = skimage.data.astronaut()[::2, ::2]          # 256 x 256, square
    out = []
    for img in (chelsea, coffee, astronaut):
        grey = img.mean(axis=2)
        # 0 (unlabelled) .. 15: many label edges, so a wrong nearest-neighbour shows
        out.append((img, (grey // 16).astype(np.uint8)))
    return out


def _gluoncv_dataset(tmp_path, base_size, crop_size):
    return segbase.SegmentationDataset(str(tmp_path), "train", "train", None,
                                       base_size=base_size, crop_size=crop_size)


def test_published_settings_are_gluoncvs():
    from gluoncv.model_zoo.segbase import MultiEvalModel
    params = inspect.signature(segbase.SegmentationDataset.__init__).parameters
    ours = SegmentationEval()
    assert (ours.base_size, ours.crop_size) == (params["base_size"].default,
                                                 params["crop_size"].default) == (520, 480)
    evaluator = inspect.signature(MultiEvalModel.__init__).parameters
    assert list(ours.scales) == evaluator["scales"].default
    assert ours.flip == evaluator["flip"].default


@pytest.mark.parametrize("base_size,crop_size", [(SegmentationEval().base_size,
                                                  SegmentationEval().crop_size), (200, 180)])
def test_train_transform_equals_gluoncv_with_the_same_draws(tmp_path, monkeypatch, base_size,
                                                            crop_size):
    gcv = _gluoncv_dataset(tmp_path, base_size, crop_size)
    seen = set()
    for p, (img, mask) in enumerate(_photos()):
        for seed in range(6):
            theirs_rng, ours_rng = np.random.RandomState(seed), np.random.RandomState(seed)
            monkeypatch.setattr(segbase, "random", _StreamRandom(theirs_rng))
            want_img, want_mask = gcv._sync_transform(Image.fromarray(img), Image.fromarray(mask))
            draws = draw_train(img.shape[0], img.shape[1], base_size, crop_size, ours_rng)
            got_img, got_mask = train_sync_transform(img, mask, draws, crop_size)
            np.testing.assert_array_equal(got_img, want_img.asnumpy())
            np.testing.assert_array_equal(got_mask, want_mask.asnumpy())
            # the same number of draws was taken: the two streams are at the same place
            assert theirs_rng.random_sample() == ours_rng.random_sample()
            shorter = min(draws.long_size, round(draws.long_size * min(img.shape[:2])
                                                 / max(img.shape[:2])))
            seen.add(("flip", draws.flip))
            seen.add(("blur", draws.blur_radius is not None))
            seen.add(("pad", shorter < crop_size))
    # every branch of the transform was compared at least once
    assert seen == {(k, v) for k in ("flip", "blur", "pad") for v in (False, True)}, seen


def test_val_transform_equals_gluoncv(tmp_path):
    for crop_size in (SegmentationEval().crop_size, 181):
        gcv = _gluoncv_dataset(tmp_path, 520, crop_size)
        for img, mask in _photos():
            want_img, want_mask = gcv._val_sync_transform(Image.fromarray(img),
                                                           Image.fromarray(mask))
            got_img, got_mask = val_sync_transform(img, mask, crop_size)
            np.testing.assert_array_equal(got_img, want_img.asnumpy())
            np.testing.assert_array_equal(got_mask, want_mask.asnumpy())


def test_mask_target_equals_ade20k_mask_transform():
    from gluoncv.data.ade20k.segmentation import ADE20KSegmentation
    ade = ADE20KSegmentation.__new__(ADE20KSegmentation)     # no data folder needed
    for _, mask in _photos():
        want = ade._mask_transform(Image.fromarray(mask)).asnumpy()
        got = mask_target(mask)
        assert got.dtype == want.dtype == np.int32
        np.testing.assert_array_equal(got, want)
        assert got.min() == -1                               # unlabelled 0 -> ignored


def test_padding_is_unlabelled_and_black():
    img = np.full((50, 80, 3), 200, np.uint8)
    mask = np.full((50, 80), 3, np.uint8)
    # long side 80 -> 80 (no resize), crop 100: pad 50 rows and 20 columns at bottom / right
    draws = draw_train(50, 80, 80, 100, np.random.RandomState(0))._replace(
        flip=False, long_size=80, x1=0, y1=0, blur_radius=None)
    out_img, out_mask = train_sync_transform(img, mask, draws, 100)
    assert (out_mask[:50, :80] == 3).all() and (out_mask[50:] == 0).all()
    assert (out_mask[:, 80:] == 0).all() and (out_img[50:] == 0).all()
    assert (mask_target(out_mask)[50:] == -1).all()


def test_draws_are_a_function_of_the_seed():
    a = [draw_train(300, 451, 520, 480, np.random.RandomState(s)) for s in range(5)]
    b = [draw_train(300, 451, 520, 480, np.random.RandomState(s)) for s in range(5)]
    assert a == b and len(set(a)) == 5
    for d in a:
        assert 260 <= d.long_size <= 1040


def test_the_model_input_is_gluoncvs_totensor_and_normalize():
    from mxnet.gluon.data.vision import transforms
    from resnest.gluon.data.seg_transforms import to_input
    pipeline = transforms.Compose([transforms.ToTensor(),
                                   transforms.Normalize([.485, .456, .406], [.229, .224, .225])])
    import mxnet as mx
    for img, _ in _photos():
        want = pipeline(mx.nd.array(img, dtype="uint8")).asnumpy()
        got = to_input(img)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_loader_transforms_are_the_transforms_above_with_the_sample_seed():
    from resnest.gluon.data.seg_transforms import (SegmentationEvalTransform,
                                                   SegmentationTrainTransform, to_input)
    img, mask = _photos()[0]
    data, target = SegmentationTrainTransform(200, 180)(img, mask, np.random.RandomState(5))
    draws = draw_train(img.shape[0], img.shape[1], 200, 180, np.random.RandomState(5))
    want_img, want_mask = train_sync_transform(img, mask, draws, 180)
    np.testing.assert_array_equal(data, to_input(want_img))
    np.testing.assert_array_equal(target, mask_target(want_mask))
    data, target = SegmentationEvalTransform(181)(img, mask)
    want_img, want_mask = val_sync_transform(img, mask, 181)
    np.testing.assert_array_equal(data, to_input(want_img))
    whole, target = SegmentationEvalTransform()(img, mask)          # test.py: the image as is
    assert whole.shape == (3,) + img.shape[:2]
    np.testing.assert_array_equal(target, mask_target(mask))
