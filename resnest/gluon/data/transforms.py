"""Per-image transforms of the Python pipeline, on numpy RGB uint8 arrays (H, W, 3).

Every random transform takes an explicit ``numpy.random.RandomState`` so that a sample's
augmentation is a pure function of its seed, whatever process or worker count runs it.
"""
import math

import cv2
import numpy as np

INTERPOLATIONS = {'bilinear': cv2.INTER_LINEAR, 'bicubic': cv2.INTER_CUBIC,
                  'nearest': cv2.INTER_NEAREST, 'area': cv2.INTER_AREA}
# ImageNet RGB PCA (AlexNet "lighting"): eigenvalues and eigenvectors of the pixel covariance.
_EIGVAL = np.array([55.46, 4.794, 1.148], dtype=np.float32)
_EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                    [-0.5808, -0.0045, -0.8140],
                    [-0.5836, -0.6948, 0.4203]], dtype=np.float32)
_GREY = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def interpolation_flag(name):
    """cv2 flag for 'bilinear' / 'bicubic' / 'nearest' / 'area'; ValueError otherwise."""
    if name not in INTERPOLATIONS:
        raise ValueError(f'interpolation must be one of {sorted(INTERPOLATIONS)}, not {name!r}')
    return INTERPOLATIONS[name]


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


def random_resized_crop(img, size, rng, efficientnet=False, min_area=None):
    """Random-resized crop to ``size`` x ``size``.

    ``min_area`` overrides the smallest area fraction (0.08, or 0.1 with ``efficientnet``);
    small centred objects such as digits want a larger one.
    ``efficientnet=False``: area 0.08..1, bilinear, fallback = whole image clamped to the
    ratio range (the classic ImageNet recipe). ``efficientnet=True`` (used for inputs >= 320):
    area 0.1..1, bicubic, fallback = centre crop of ``size / (size + 32)`` of the short side.
    """
    height, width = img.shape[:2]
    if efficientnet:
        box = random_crop_box(height, width, rng, area=(min_area or 0.1, 1.0))
        if box is None:
            box = center_crop_box(height, width, size / (size + 32))
        interp = cv2.INTER_CUBIC
    else:
        box = random_crop_box(height, width, rng, area=(min_area or 0.08, 1.0))
        if box is None:
            box = center_crop_box(height, width, 1.0)
        interp = cv2.INTER_LINEAR
    top, left, h, w = box
    return cv2.resize(img[top:top + h, left:left + w], (size, size), interpolation=interp)


def color_jitter(img, strength, rng):
    """Brightness, contrast and saturation factors in ``1 +- strength``, in random order;
    returns float32."""
    out = img.astype(np.float32)
    for op in rng.permutation(3):
        factor = 1.0 + rng.uniform(-strength, strength)
        if op == 0:
            out *= factor
        elif op == 1:
            mean = float((out @ _GREY).mean())
            out = out * factor + mean * (1.0 - factor)
        else:
            grey = (out @ _GREY)[:, :, None]
            out = out * factor + grey * (1.0 - factor)
    return np.clip(out, 0, 255, out=out)


def lighting(img, strength, rng):
    """AlexNet PCA lighting noise with standard deviation ``strength`` (on float32 RGB)."""
    alpha = rng.normal(0, strength, size=3).astype(np.float32)
    return img + (_EIGVEC @ (alpha * _EIGVAL))[None, None, :]


def normalize_chw(img, mean, std):
    """float32 HWC RGB on 0..255 -> float32 CHW ``(x - mean) / std``."""
    out = (np.asarray(img, dtype=np.float32) - np.asarray(mean, np.float32)) \
        / np.asarray(std, np.float32)
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def eval_crop(img, crop_size, crop_ratio, interpolation='bilinear', crop_first=None):
    """The published single-crop evaluation preprocessing, on an RGB uint8 array.

    ``crop_first=False`` (default for bilinear, resnest14..101 and the fast variants): resize
    the short side to ``ceil(crop_size / crop_ratio)``, then take the centred
    ``crop_size`` square. ``crop_first=True`` (default for bicubic, resnest200/269): take the
    centred square of ``crop_ratio`` of the short side, then resize it to ``crop_size``.
    """
    flag = interpolation_flag(interpolation)
    if crop_first is None:
        crop_first = interpolation == 'bicubic'
    height, width = img.shape[:2]
    if crop_first:
        top, left, h, w = center_crop_box(height, width, crop_ratio)
        return cv2.resize(img[top:top + h, left:left + w], (crop_size, crop_size),
                          interpolation=flag)
    short = int(math.ceil(crop_size / crop_ratio))
    scale = short / min(height, width)
    new_h = short if height <= width else int(round(height * scale))
    new_w = short if width < height else int(round(width * scale))
    img = cv2.resize(img, (new_w, new_h), interpolation=flag)
    top, left = (new_h - crop_size) // 2, (new_w - crop_size) // 2
    return img[top:top + crop_size, left:left + crop_size]
