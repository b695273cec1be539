"""AutoAugment (:mod:`resnest.gluon.data.autoaugment`): every operation computes what PIL
computes, a policy is reproducible from its seed, and a policy applied to a box is the box of
the policy applied to the whole image."""
import numpy as np
import pytest

from _images import photos
from resnest.gluon.data.autoaugment import ImageNetPolicy


def test_augment_policies_change_images_reproducibly():
    img = photos()[1][:64, :64]
    for policy in (ImageNetPolicy(),):
        outs = [policy(img, np.random.RandomState(s)) for s in (0, 0, 1, 2, 3)]
        assert np.array_equal(outs[0], outs[1])
        assert any(not np.array_equal(img, o) for o in outs)
        assert all(o.shape == (64, 64, 3) and o.dtype == np.uint8 for o in outs)


class _Sign:
    """A stand-in RandomState whose sign draw (``rand() < 0.5``) is fixed."""

    def __init__(self, negative):
        self.negative = negative

    def rand(self):
        return 0.0 if self.negative else 1.0


def _pil_op(name, pil, level, negative):
    """The PIL operation our op ``name`` reproduces (expected values from PIL itself)."""
    from PIL import Image, ImageEnhance, ImageOps
    sign = -1 if negative else 1
    fill, w, h = (128, 128, 128), pil.size[0], pil.size[1]
    affine = {'ShearX': (1, sign * level * 0.3, 0, 0, 1, 0),
              'ShearY': (1, 0, 0, sign * level * 0.3, 1, 0),
              'TranslateX': (1, 0, sign * level * 150 / 331 * w, 0, 1, 0),
              'TranslateY': (1, 0, 0, 0, 1, sign * level * 150 / 331 * h)}
    if name in affine:
        return pil.transform(pil.size, Image.AFFINE, affine[name], Image.BILINEAR,
                             fillcolor=fill)
    if name == 'Rotate':
        return pil.rotate(sign * level * 30, Image.BILINEAR, fillcolor=fill)
    enhance = {'Color': ImageEnhance.Color, 'Contrast': ImageEnhance.Contrast,
               'Brightness': ImageEnhance.Brightness, 'Sharpness': ImageEnhance.Sharpness}
    if name in enhance:
        return enhance[name](pil).enhance(1 + sign * level * 0.9)
    return {'Posterize': lambda: ImageOps.posterize(pil, int(round(8 - 4 * level))),
            'Solarize': lambda: ImageOps.solarize(pil, int(round(256 - 256 * level))),
            'AutoContrast': lambda: ImageOps.autocontrast(pil),
            'Equalize': lambda: ImageOps.equalize(pil),
            'Invert': lambda: ImageOps.invert(pil)}[name]()


@pytest.mark.parametrize('name', ['ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate',
                                  'Color', 'Contrast', 'Brightness', 'Sharpness', 'Posterize',
                                  'Solarize', 'AutoContrast', 'Equalize', 'Invert'])
def test_autoaugment_ops_compute_what_pil_computes(name):
    from PIL import Image
    from resnest.gluon.data.autoaugment import apply_op
    img = np.ascontiguousarray(photos()[0][100:220, 200:360])      # 120x160, real photo
    for level, negative in ((5 / 9, False), (1.0, True)):
        ours = apply_op(name, img, level, _Sign(negative)).astype(int)
        pil = np.asarray(_pil_op(name, Image.fromarray(img), level, negative)).astype(int)
        diff = np.abs(ours - pil)
        if name in ('Posterize', 'Solarize', 'AutoContrast', 'Equalize', 'Invert'):
            assert diff.max() == 0                 # lookup tables: exactly PIL's
        elif name in ('Color', 'Contrast', 'Brightness', 'Sharpness'):
            assert diff.max() <= 2                 # blends: rounding (and grey weights)
        else:                                      # resampling: sub-pixel centre conventions
            assert diff.mean() < 4 and np.percentile(diff, 90) < 12, diff.mean()


def test_autoaugment_in_a_box_is_the_box_of_the_whole_result():
    from resnest.gluon.data.autoaugment import IMAGENET_POLICY
    img = photos()[0][:240, :320]
    policy, warps = ImageNetPolicy(), ('Rotate', 'ShearX', 'TranslateX', 'TranslateY')
    for seed in range(4 * len(IMAGENET_POLICY)):
        box_rng = np.random.RandomState(1000 + seed)
        h, w = box_rng.randint(20, 241), box_rng.randint(20, 321)
        box = (box_rng.randint(0, 241 - h), box_rng.randint(0, 321 - w), h, w)
        whole = policy(img, np.random.RandomState(seed))
        part = policy(img, np.random.RandomState(seed), box)
        top, left = box[:2]
        diff = np.abs(part - whole[top:top + h, left:left + w].astype(int))
        names = [n for n, _, _ in IMAGENET_POLICY[np.random.RandomState(seed).randint(25)]]
        if not set(names) & set(warps):
            assert diff.max() == 0, names
        else:   # a warp of the box alone samples on OpenCV's 1/32-pixel grid from another
            assert (diff > 0).mean() < 0.02 and diff.max() <= 8, names   # origin
