"""Per-image transforms on numpy RGB uint8 arrays (H, W, 3): training augmentation and the
published evaluation preprocessing (:func:`eval_transform`).

Every random transform takes an explicit ``numpy.random.RandomState`` so that a sample's
augmentation is a pure function of its seed, whatever process or worker count runs it.
"""
import math

import cv2
import numpy as np

from ..utils.errors import UserError
from ..pretrained import eval_settings

# ImageNet RGB PCA (AlexNet "lighting"): eigenvalues and eigenvectors of the pixel covariance.
_EIGVAL = np.array([55.46, 4.794, 1.148], dtype=np.float32)
_EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                    [-0.5808, -0.0045, -0.8140],
                    [-0.5836, -0.6948, 0.4203]], dtype=np.float32)
_GREY = np.array([0.299, 0.587, 0.114])


def random_crop_box(height, width, rng, area=(0.08, 1.0), ratio=(3 / 4, 4 / 3), attempts=10):
    """Inception-style random box ``(top, left, h, w)``: a random fraction of the area and a
    log-uniform aspect ratio; after ``attempts`` misses, None (the caller picks a fallback)."""
    total = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(attempts):
        target = total * rng.uniform(*area)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h + 1), rng.randint(0, width - w + 1), h, w
    return None


def center_crop_box(height, width, fraction):
    """Centred square box covering ``fraction`` of the shorter side."""
    side = max(1, int(round(min(height, width) * fraction)))
    return (height - side) // 2, (width - side) // 2, side, side


def resized_crop_box(height, width, size, rng, efficientnet=False, min_area=None):
    """The box ``(top, left, h, w)`` of a random-resized crop to ``size`` x ``size``, and the
    interpolation to resize it with.

    ``min_area`` overrides the smallest area fraction (0.08, or 0.1 with ``efficientnet``);
    small centred objects such as digits want a larger one.
    ``efficientnet=False``: area 0.08..1, bilinear, fallback = whole image clamped to the
    ratio range (the classic ImageNet recipe). ``efficientnet=True`` (used for inputs >= 320):
    area 0.1..1, bicubic, fallback = centre crop of ``size / (size + 32)`` of the short side.
    """
    if efficientnet:
        box = random_crop_box(height, width, rng, area=(min_area or 0.1, 1.0))
        return box or center_crop_box(height, width, size / (size + 32)), cv2.INTER_CUBIC
    box = random_crop_box(height, width, rng, area=(min_area or 0.08, 1.0))
    return box or center_crop_box(height, width, 1.0), cv2.INTER_LINEAR


def jitter_matrix(channel_means, strength, rng):
    """Colour jitter as one affine map ``x -> A @ x + b`` of RGB pixels.

    Brightness, contrast and saturation factors in ``1 +- strength``, in random order:
    brightness scales, contrast blends with the mean grey level of the image as it is at
    that point, saturation blends each pixel with its own grey level. All three are affine in
    the pixel, and the image's mean grey level is affine in its channel means
    (``channel_means``, of the input), so their composition is one affine map.
    """
    A, b = np.eye(3), np.zeros(3)
    means = np.asarray(channel_means, np.float64)
    for op in rng.permutation(3):
        factor = 1.0 + rng.uniform(-strength, strength)
        if op == 0:
            A, b = A * factor, b * factor
        elif op == 1:
            grey_mean = float(_GREY @ (A @ means + b))
            A, b = A * factor, b * factor + grey_mean * (1.0 - factor)
        else:
            blend = factor * np.eye(3) + (1.0 - factor) * np.outer(np.ones(3), _GREY)
            A, b = blend @ A, blend @ b
    return A, b


def lighting_shift(strength, rng):
    """AlexNet PCA lighting noise: the RGB offset for standard deviation ``strength``."""
    alpha = rng.normal(0, strength, size=3).astype(np.float32)
    return _EIGVEC @ (alpha * _EIGVAL)


def color_normalize_chw(img, jitter, lighting_std, mean, std, rng, bgr=False):
    """Colour jitter (clipped to 0..255), PCA lighting, then ``(x / 255 - mean) / std`` of an
    RGB (or, with ``bgr``, BGR) uint8 HWC image, as RGB float32 CHW, in two passes over the
    pixels (one affine map for the jitter, one for lighting and normalisation) instead of one
    per step; the channel swap of a BGR input is part of the first map."""
    to_rgb = np.eye(3)[::-1] if bgr else np.eye(3)
    x = img.astype(np.float32)
    if jitter:
        A, b = jitter_matrix(to_rgb @ cv2.mean(img)[:3], jitter, rng)
        x = cv2.transform(x, np.hstack([A @ to_rgb, b[:, None]]).astype(np.float32))
        np.clip(x, 0, 255, out=x)
        to_rgb = np.eye(3)
    shift = lighting_shift(lighting_std, rng) if lighting_std else np.zeros(3, np.float32)
    scale = 1.0 / (255.0 * np.asarray(std, np.float64))
    offset = (shift / 255.0 - np.asarray(mean, np.float64)) / np.asarray(std, np.float64)
    x = cv2.transform(x, np.hstack([np.diag(scale) @ to_rgb, offset[:, None]]).astype(np.float32))
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def normalize_chw(img, mean, std):
    """HWC RGB on 0..255 -> float32 CHW ``(x / 255 - mean) / std`` with ``mean``/``std`` on
    [0, 1], computed in float32 in the order of MXNet's ``ToTensor`` then ``Normalize``."""
    out = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    out = (out - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def resize_center_crop(img, resize, crop_size):
    """MXNet's ``transforms.Resize(resize, keep_ratio=True)`` (bilinear) then
    ``transforms.CenterCrop(crop_size)`` on an RGB uint8 array, by those very operators, so
    their rounding of the resized shape and the crop box is exactly theirs."""
    import mxnet as mx
    from mxnet.gluon.data.vision import transforms
    x = mx.nd.array(img, dtype="uint8")
    x = transforms.Resize(resize, keep_ratio=True)(x)
    return transforms.CenterCrop(crop_size)(x).asnumpy()


def ecenter_crop(img, crop_size):
    """The authors' "ECenterCrop": the centred square of ``crop / (crop + 32)`` of the short
    side (a float box; PIL's ``crop`` rounds its corners), then PIL bicubic resize (which
    antialiases when it shrinks) to ``crop_size`` x ``crop_size``."""
    from PIL import Image
    pil = Image.fromarray(np.asarray(img, dtype=np.uint8))
    width, height = pil.size
    side = float(crop_size) / (crop_size + 32) * min(width, height)
    top, left = int(round((height - side) / 2.0)), int(round((width - side) / 2.0))
    pil = pil.crop((left, top, left + side, top + side))
    return np.asarray(pil.resize((crop_size, crop_size), Image.BICUBIC))


class EvalTransform:
    """The published single-crop evaluation of one RGB uint8 HWC image, as the authors'
    ``scripts/gluon/verify.py`` does it, then normalisation: float32 CHW.

    Crops up to 320 (:data:`~resnest.gluon.pretrained.ECENTER_CROP_ABOVE`) go through
    :func:`resize_center_crop`, larger ones through :func:`ecenter_crop`.
    """

    def __init__(self, settings):
        self.settings = settings

    def crop(self, img):
        """The cropped uint8 image, before normalisation."""
        s = self.settings
        if s.method == "ecenter-crop":
            return ecenter_crop(img, s.crop_size)
        return resize_center_crop(img, s.resize, s.crop_size)

    def __call__(self, img, rng=None):
        return normalize_chw(self.crop(img), self.settings.mean, self.settings.std)


def eval_transform(model=None, crop_size=None, crop_ratio=None):
    """The evaluation preprocessing of ``model``'s published weights: a callable
    ``RGB uint8 HWC array -> normalised float32 CHW array``.

    Parameters
    ----------
    model : str, optional
        A registered model name; its settings come from
        :data:`resnest.gluon.pretrained.PRETRAINED` (224 at 0.875 for models without
        published weights).
    crop_size, crop_ratio : optional
        Override the published values (as ``verify.py --crop-size/--crop-ratio``).

    Raises
    ------
    UserError
        A crop size below 32 or a crop ratio outside (0, 1].
    """
    settings = eval_settings(model, crop_size, crop_ratio)
    if settings.crop_size < 32:
        raise UserError(f"crop size {settings.crop_size} is too small: the models downsample "
                        "by 32, so use a crop size of 32 or more.")
    if not 0 < settings.crop_ratio <= 1:
        raise UserError(f"the crop ratio must be in (0, 1], got {settings.crop_ratio}.")
    return EvalTransform(settings)
