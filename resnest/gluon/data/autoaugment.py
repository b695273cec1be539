"""AutoAugment with the ImageNet policy (Cubuk et al. 2019), the published recipe's ``--auto_aug``.

It works on RGB uint8 arrays (H, W, 3) with OpenCV and lookup tables, several times faster
than the PIL operations it reproduces, and draws every random choice from a given
``numpy.random.RandomState``, so a sample's augmentation is reproducible from its seed.
Magnitudes follow the papers: level ``m`` of 10 bins maps linearly onto each operation's range
(shear 0..0.3, translate 0..150/331 of the side, rotate 0..30 degrees, enhance 1 +- 0..0.9,
posterize 8..4 bits, solarize threshold 256..0), with a random sign where it applies.
Each operation computes what the PIL operation of the same name computes (``ImageOps``,
``ImageEnhance``, an affine ``transform`` with bilinear sampling and grey fill); the tests
check them against PIL: the lookup-table ones exactly, the others to rounding.

Training crops a box of the augmented image right after, so the policy can compute only that
box (``box=``): the last operation that needs the whole image (a warp, or statistics such as
Equalize's histogram) writes only the box, and the pointwise operations after it touch only
the box. The result is the box of the whole augmented image: exactly, except that a warp
computed for the box alone samples OpenCV's 1/32-pixel grid from another origin (about 1% of
the pixels along sharp edges differ by a few levels).
"""
import cv2
import numpy as np

_FILL = (128, 128, 128)
_RAMP = np.arange(256)
# PIL's SMOOTH filter (the "degenerate" image of ImageEnhance.Sharpness).
_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13


def _signed(value, rng):
    return -value if rng.rand() < 0.5 else value


def _cut(img, box):
    if box is None:
        return img
    top, left, h, w = box
    return img[top:top + h, left:left + w]


def _affine(img, matrix, box):
    """Output pixel (x, y) samples input ``matrix @ (x, y, 1)``, bilinear, grey outside;
    only the pixels of ``box`` when given."""
    matrix = np.array(matrix, np.float64)
    height, width = img.shape[:2]
    if box is not None:
        top, left, height, width = box
        matrix[:, 2] += matrix[:, 0] * left + matrix[:, 1] * top
    return cv2.warpAffine(img, matrix, (width, height),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=_FILL)


def _shear(img, level, rng, axis, box=None):
    s = _signed(level * 0.3, rng)
    return _affine(img, [[1, s, 0], [0, 1, 0]] if axis == 0 else [[1, 0, 0], [s, 1, 0]], box)


def _translate(img, level, rng, axis, box=None):
    pixels = _signed(level * 150 / 331, rng) * img.shape[1 - axis]
    return _affine(img, [[1, 0, pixels], [0, 1, 0]] if axis == 0
                   else [[1, 0, 0], [0, 1, pixels]], box)


def _rotate(img, level, rng, box=None):
    """Counter-clockwise by the angle about the image centre (as ``PIL.Image.rotate``)."""
    height, width = img.shape[:2]
    forward = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2),
                                      _signed(level * 30, rng), 1.0)
    return _affine(img, cv2.invertAffineTransform(forward), box)


def _grey(img, bgr=False):
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY)


def _blend(img, degenerate, factor):
    """``degenerate + factor * (img - degenerate)``, saturated to uint8 (PIL's blend)."""
    if np.isscalar(degenerate):
        return cv2.addWeighted(img, factor, img, 0.0, degenerate * (1.0 - factor))
    return cv2.addWeighted(img, factor, degenerate, 1.0 - factor, 0.0)


def _enhance_factor(level, rng):
    return 1.0 + _signed(level * 0.9, rng)


def _color(img, level, rng, box=None, bgr=False):
    img = _cut(img, box)
    return _blend(img, cv2.cvtColor(_grey(img, bgr), cv2.COLOR_GRAY2RGB),
                  _enhance_factor(level, rng))


def _contrast(img, level, rng, box=None, bgr=False):
    mean = int(cv2.mean(_grey(img, bgr))[0] + 0.5)    # of the whole image
    return _blend(_cut(img, box), float(mean), _enhance_factor(level, rng))


def _brightness(img, level, rng, box=None):
    return _blend(_cut(img, box), 0.0, _enhance_factor(level, rng))


def _sharpness(img, level, rng, box=None):
    smooth = cv2.filter2D(img, -1, _SMOOTH, borderType=cv2.BORDER_REPLICATE)
    smooth[0], smooth[-1], smooth[:, 0], smooth[:, -1] = img[0], img[-1], img[:, 0], img[:, -1]
    return _blend(_cut(img, box), _cut(smooth, box), _enhance_factor(level, rng))


def _lut(img, table):
    """Apply a 256-entry table (or one per channel, shape (3, 256))."""
    table = np.clip(table, 0, 255).astype(np.uint8)
    if table.ndim == 2:
        table = np.ascontiguousarray(table.T).reshape(256, 1, 3)
    return cv2.LUT(img, table)


def _posterize(img, level, rng, box=None):
    bits = int(round(8 - 4 * level))
    return _lut(_cut(img, box), _RAMP & ~(2 ** (8 - bits) - 1))


def _solarize(img, level, rng, box=None):
    threshold = int(round(256 - 256 * level))
    return _lut(_cut(img, box), np.where(_RAMP < threshold, _RAMP, 255 - _RAMP))


def _histograms(img):
    return [cv2.calcHist([img], [c], None, [256], [0, 256]).ravel().astype(np.int64)
            for c in range(3)]


def _autocontrast(img, level, rng, box=None):
    tables = []
    for hist in _histograms(img):
        used = np.flatnonzero(hist)
        lo, hi = used[0], used[-1]
        if hi <= lo:
            tables.append(_RAMP)
            continue
        scale = 255.0 / (hi - lo)
        tables.append((_RAMP * scale - lo * scale).astype(np.int64))   # PIL truncates
    return _lut(_cut(img, box), np.stack(tables))


def _equalize(img, level, rng, box=None):
    tables = []
    for hist in _histograms(img):
        used = hist[hist > 0]
        step = (used.sum() - used[-1]) // 255 if len(used) > 1 else 0
        if not step:
            tables.append(_RAMP)
            continue
        before = np.concatenate([[0], np.cumsum(hist)[:-1]])  # pixels below each value
        tables.append((step // 2 + before) // step)
    return _lut(_cut(img, box), np.stack(tables))


_OPS = {
    'ShearX': lambda img, level, rng, box=None: _shear(img, level, rng, 0, box),
    'ShearY': lambda img, level, rng, box=None: _shear(img, level, rng, 1, box),
    'TranslateX': lambda img, level, rng, box=None: _translate(img, level, rng, 0, box),
    'TranslateY': lambda img, level, rng, box=None: _translate(img, level, rng, 1, box),
    'Rotate': _rotate,
    'Color': _color,
    'Contrast': _contrast,
    'Brightness': _brightness,
    'Sharpness': _sharpness,
    'Posterize': _posterize,
    'Solarize': _solarize,
    'AutoContrast': _autocontrast,
    'Equalize': _equalize,
    'Invert': lambda img, level, rng, box=None: cv2.bitwise_not(_cut(img, box)),
}
# The two operations that weigh the channels (grey level), for images in BGR order.
_BGR_OPS = {'Color': lambda img, level, rng, box=None: _color(img, level, rng, box, True),
            'Contrast': lambda img, level, rng, box=None: _contrast(img, level, rng, box, True)}
_OPS_OF_BGR = dict(_OPS, **_BGR_OPS)
# Operations whose output pixels depend on more than the same input pixel (or on the whole
# image's statistics): they need the whole image as input.
_WHOLE = frozenset(['ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate', 'Contrast',
                    'Sharpness', 'AutoContrast', 'Equalize'])

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


def apply_op(name, img, level, rng, box=None):
    """Operation ``name`` of the policy on RGB uint8 ``img`` at ``level`` in [0, 1] (only the
    ``box`` ``(top, left, h, w)`` of the result, when given)."""
    return _OPS[name](img, level, rng, box)


class ImageNetPolicy:
    """AutoAugment with the ImageNet policy: one random sub-policy of two operations per image,
    each applied with its probability at its magnitude. ``bgr=True`` takes and gives images in
    OpenCV's BGR order (what the decoder gives: no conversion pass needed)."""

    def __init__(self, bgr=False):
        self.bgr = bgr

    def __call__(self, img, rng, box=None):
        """Augment the RGB (or BGR) uint8 array ``img`` (H, W, 3) with random draws from
        ``rng``; with ``box`` ``(top, left, h, w)``, return only that box of the result."""
        table = _OPS_OF_BGR if self.bgr else _OPS
        sub = IMAGENET_POLICY[rng.randint(len(IMAGENET_POLICY))]
        ops = [(name, magnitude / 9.0) for name, prob, magnitude in sub if rng.rand() < prob]
        whole = [i for i, (name, _) in enumerate(ops) if name in _WHOLE]
        last_whole = whole[-1] if whole and box is not None else -1
        img = np.ascontiguousarray(img)
        if box is not None and last_whole < 0:
            img, box = _cut(img, box), None                # pointwise only: cut first
        for i, (name, level) in enumerate(ops):
            if i == last_whole:
                img, box = table[name](img, level, rng, box), None
            else:
                img = table[name](img, level, rng)
        return _cut(img, box)
