"""A small real-image classification task that needs no download: 17 photos and textures that
scikit-learn and scikit-image ship (``pip install resnest[deploy]`` brings scikit-image), one
class per photo, classified from square patches.

Training patches come from the left 72% of each image, held-out patches from its right 22%
(a 6% gap between), so the two sets share no pixel. Patches are normalised with the ImageNet
mean and std, as the published models' inputs are. Used by the int8 study
(:mod:`tools.int8_study`), by its test, and by the benchmark to calibrate int8 on real images.
"""
import functools

import numpy as np

from resnest.gluon.pretrained import IMAGENET_MEAN_255, IMAGENET_STD_255

__all__ = ["CLASSES", "load_photos", "patches", "calibration_patches"]

CLASSES = ("china", "flower", "astronaut", "chelsea", "coffee", "hubble_deep_field",
           "immunohistochemistry", "retina", "rocket", "brick", "camera", "cell", "clock",
           "coins", "grass", "gravel", "moon")
MEAN = np.array(IMAGENET_MEAN_255, np.float32).reshape(1, 3, 1, 1)
STD = np.array(IMAGENET_STD_255, np.float32).reshape(1, 3, 1, 1)
_SPLITS = {"train": (0.0, 0.72), "heldout": (0.78, 1.0)}


@functools.lru_cache(maxsize=1)
def load_photos():
    """The 17 images as RGB uint8 arrays, in :data:`CLASSES` order."""
    import skimage.data
    from sklearn.datasets import load_sample_images
    china, flower = load_sample_images().images
    photos = [china, flower]
    for name in CLASSES[2:]:
        image = getattr(skimage.data, name)()
        if image.ndim == 2:                                   # grey: three equal channels
            image = np.repeat(image[..., None], 3, axis=2)
        photos.append(np.ascontiguousarray(image[..., :3]).astype(np.uint8))
    return tuple(photos)


def _patch(rng, image, split, size, scale, augment):
    import cv2
    height, width = image.shape[:2]
    left, right = (int(f * width) for f in _SPLITS[split])
    base = min(height, right - left, 160)
    side = max(8, int(base * rng.uniform(*scale)))
    top, x0 = rng.randint(0, height - side + 1), rng.randint(left, right - side + 1)
    patch = cv2.resize(image[top:top + side, x0:x0 + side], (size, size),
                       interpolation=cv2.INTER_AREA)
    if rng.rand() < 0.5:
        patch = patch[:, ::-1]
    if augment:                                               # brightness and contrast
        patch = np.clip(patch * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20), 0, 255)
    return patch.transpose(2, 0, 1)


def patches(count, split="train", size=64, seed=0, augment=None):
    """``(images, labels)``: ``count`` normalised float32 NCHW patches of ``split`` ('train' or
    'heldout') at ``size`` px, classes in turn for the held-out set, at random for training.

    Training patches (``augment``, default for 'train') take 40-100% of a window of at most
    160 px with flips and brightness jitter; held-out patches 50-100% with flips only.
    """
    photos = load_photos()
    augment = split == "train" if augment is None else augment
    rng = np.random.RandomState(seed)
    images = np.empty((count, 3, size, size), np.float32)
    labels = np.empty(count, np.int32)
    for i in range(count):
        label = rng.randint(len(photos)) if split == "train" else i % len(photos)
        scale = (0.4, 1.0) if augment else (0.5, 1.0)
        images[i] = _patch(rng, photos[label], split, size, scale, augment)
        labels[i] = label
    return (images - MEAN) / STD, labels


def calibration_patches(count=64, size=64, seed=7):
    """Patches of the training regions only (never the held-out ones), no brightness jitter:
    real images to calibrate int8 on."""
    return patches(count, "train", size, seed, augment=False)[0]
