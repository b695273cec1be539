"""AutoAugment with the ImageNet policy (Cubuk et al. 2019), the published recipe's ``--auto_aug``.

It works on PIL images and draws every random choice from a given
``numpy.random.RandomState``, so a sample's augmentation is reproducible from its seed.
Magnitudes follow the papers: level ``m`` of 10 bins maps linearly onto each operation's range
(shear 0..0.3, translate 0..150/331 of the side, rotate 0..30 degrees, enhance 1 +- 0..0.9,
posterize 8..4 bits, solarize threshold 256..0), with a random sign where it applies.
"""
import numpy as np
from PIL import Image, ImageOps, ImageEnhance

_FILL = (128, 128, 128)


def _signed(value, rng):
    return -value if rng.rand() < 0.5 else value


def _shear(img, level, rng, axis):
    s = _signed(level * 0.3, rng)
    coeffs = (1, s, 0, 0, 1, 0) if axis == 0 else (1, 0, 0, s, 1, 0)
    return img.transform(img.size, Image.AFFINE, coeffs, Image.BILINEAR, fillcolor=_FILL)


def _translate(img, level, rng, axis):
    pixels = _signed(level * 150 / 331, rng) * img.size[axis]
    coeffs = (1, 0, pixels, 0, 1, 0) if axis == 0 else (1, 0, 0, 0, 1, pixels)
    return img.transform(img.size, Image.AFFINE, coeffs, Image.BILINEAR, fillcolor=_FILL)


def _enhance(kind):
    def apply(img, level, rng):
        return kind(img).enhance(1.0 + _signed(level * 0.9, rng))
    return apply


_OPS = {
    'ShearX': lambda img, level, rng: _shear(img, level, rng, 0),
    'ShearY': lambda img, level, rng: _shear(img, level, rng, 1),
    'TranslateX': lambda img, level, rng: _translate(img, level, rng, 0),
    'TranslateY': lambda img, level, rng: _translate(img, level, rng, 1),
    'Rotate': lambda img, level, rng: img.rotate(_signed(level * 30, rng), Image.BILINEAR,
                                                 fillcolor=_FILL),
    'Color': _enhance(ImageEnhance.Color),
    'Contrast': _enhance(ImageEnhance.Contrast),
    'Brightness': _enhance(ImageEnhance.Brightness),
    'Sharpness': _enhance(ImageEnhance.Sharpness),
    'Posterize': lambda img, level, rng: ImageOps.posterize(img, int(round(8 - 4 * level))),
    'Solarize': lambda img, level, rng: ImageOps.solarize(img, int(round(256 - 256 * level))),
    'AutoContrast': lambda img, level, rng: ImageOps.autocontrast(img),
    'Equalize': lambda img, level, rng: ImageOps.equalize(img),
    'Invert': lambda img, level, rng: ImageOps.invert(img),
}

# (operation, probability, magnitude bin 0..9) pairs of the published ImageNet policy.
IMAGENET_POLICY = (
    (('Posterize', 0.4, 8), ('Rotate', 0.6, 9)),
    (('Solarize', 0.6, 5), ('AutoContrast', 0.6, 5)),
    (('Equalize', 0.8, 8), ('Equalize', 0.6, 3)),
    (('Posterize', 0.6, 7), ('Posterize', 0.6, 6)),
    (('Equalize', 0.4, 7), ('Solarize', 0.2, 4)),
    (('Equalize', 0.4, 4), ('Rotate', 0.8, 8)),
    (('Solarize', 0.6, 3), ('Equalize', 0.6, 7)),
    (('Posterize', 0.8, 5), ('Equalize', 1.0, 2)),
    (('Rotate', 0.2, 3), ('Solarize', 0.6, 8)),
    (('Equalize', 0.6, 8), ('Posterize', 0.4, 6)),
    (('Rotate', 0.8, 8), ('Color', 0.4, 0)),
    (('Rotate', 0.4, 9), ('Equalize', 0.6, 2)),
    (('Equalize', 0.0, 7), ('Equalize', 0.8, 8)),
    (('Invert', 0.6, 4), ('Equalize', 1.0, 8)),
    (('Color', 0.6, 4), ('Contrast', 1.0, 8)),
    (('Rotate', 0.8, 8), ('Color', 1.0, 2)),
    (('Color', 0.8, 8), ('Solarize', 0.8, 7)),
    (('Sharpness', 0.4, 7), ('Invert', 0.6, 8)),
    (('ShearX', 0.6, 5), ('Equalize', 1.0, 9)),
    (('Color', 0.4, 0), ('Equalize', 0.6, 3)),
    (('Equalize', 0.4, 7), ('Solarize', 0.2, 4)),
    (('Solarize', 0.6, 5), ('AutoContrast', 0.6, 5)),
    (('Invert', 0.6, 4), ('Equalize', 1.0, 8)),
    (('Color', 0.6, 4), ('Contrast', 1.0, 8)),
    (('Equalize', 0.8, 8), ('Equalize', 0.6, 3)),
)


class ImageNetPolicy:
    """AutoAugment with the ImageNet policy: one random sub-policy of two operations per image,
    each applied with its probability at its magnitude."""

    def __call__(self, img, rng):
        """Augment PIL image ``img`` with random draws from ``rng``."""
        for name, prob, magnitude in IMAGENET_POLICY[rng.randint(len(IMAGENET_POLICY))]:
            if rng.rand() < prob:
                img = _OPS[name](img, magnitude / 9.0, rng)
        return img
