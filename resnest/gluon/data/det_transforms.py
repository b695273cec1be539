"""The detection training transform of GluonCV's Faster / Mask R-CNN
(``FasterRCNNDefaultTrainTransform``), with its random draws made explicit, and the batching
of images of different sizes.

Training, in GluonCV's order:

1. draw the short side, an integer in ``train_short = (low, high)`` inclusive (one value: that
   value), and resize as the evaluation does (:func:`~.detection.resized_size`: the short side
   to it unless the long side would pass ``max_size``; OpenCV bilinear, the operator MXNet's
   ``imresize`` wraps, equal to it pixel for pixel); boxes scale with the width and height
   ratios;
2. flip left-right with probability ``flip_p``; a box becomes ``(W - x2, y1, W - x1, y2)``
   (GluonCV's ``bbox.flip``, ``W`` the resized width);
3. ``/ 255``, ImageNet mean and std, CHW float32.

Instance masks follow the image (nearest-neighbour resize, the same flip). GluonCV takes its
draws from Python's and numpy's global generators; :func:`draw_train` takes them from the
sample's own ``numpy.random.RandomState`` (short side first, then the flip), so a sample's
augmentation is a pure function of its seed.

Batches (:func:`pad_batch`): images padded with 0 (after normalisation, GluonCV's ``Pad``) at
the bottom and right to the largest of the batch, box rows padded with -1 to the most boxes
of the batch (at least one row), masks with 0.
"""
from typing import NamedTuple

import cv2
import numpy as np

from ..pretrained import IMAGENET_MEAN, IMAGENET_STD
from ..utils.errors import UserError
from .det_samples import DetectionTarget
from .detection import resized_size
from .transforms import normalize_chw

__all__ = ["TrainDraws", "draw_train", "train_transform", "DetectionTrainTransform",
           "DetectionEvalSample", "pad_batch"]


class TrainDraws(NamedTuple):
    """The random choices of one training sample."""

    short: int
    flip: bool


def _short_range(train_short):
    values = [int(v) for v in np.atleast_1d(train_short)]
    low, high = (values[0], values[0]) if len(values) == 1 else (values[0], values[-1])
    if len(values) > 2 or not 1 <= low <= high:
        raise UserError(f"train_short must be one short side or a range (low, high) with "
                        f"1 <= low <= high, got {tuple(values)}.")
    return low, high


def draw_train(rng, train_short, flip_p=0.5):
    """The :class:`TrainDraws` of one sample from ``rng`` (see the module doc)."""
    low, high = _short_range(train_short)
    short = int(rng.randint(low, high + 1))
    return TrainDraws(short, bool(rng.uniform() < flip_p))


def train_transform(img, target, draws, max_size, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """``(data float32 (3, h, w), DetectionTarget)`` of an RGB uint8 image and its
    :class:`~.det_samples.DetectionTarget` with the given :class:`TrainDraws`."""
    height, width = img.shape[:2]
    new_h, new_w = resized_size(height, width, draws.short, max_size)
    img = cv2.resize(np.ascontiguousarray(img), (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    boxes = np.asarray(target.boxes, np.float64).reshape(-1, 4).copy()
    boxes[:, 0::2] *= new_w / width
    boxes[:, 1::2] *= new_h / height
    masks = target.masks
    if masks is not None:
        masks = np.stack([cv2.resize(m, (new_w, new_h), interpolation=cv2.INTER_NEAREST)
                          for m in masks]) if len(masks) else \
            np.zeros((0, new_h, new_w), np.uint8)
    if draws.flip:
        img = img[:, ::-1]
        boxes[:, [0, 2]] = new_w - boxes[:, [2, 0]]
        masks = None if masks is None else masks[:, :, ::-1]
    data = normalize_chw(img, mean, std)
    masks = None if masks is None else np.ascontiguousarray(masks)
    return data, DetectionTarget(boxes.astype(np.float32), np.asarray(target.labels,
                                                                      np.float32), masks)


class DetectionTrainTransform:
    """The training transform for the loader (picklable): ``(image, target, rng) -> (data,
    target)``, batched by :func:`pad_batch`."""

    joint = True                       # takes the sample's target, not a class label

    def __init__(self, train_short, max_size, flip_p=0.5, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        _short_range(train_short)
        self.train_short, self.max_size, self.flip_p = tuple(np.atleast_1d(train_short)), \
            int(max_size), float(flip_p)
        self.mean, self.std = mean, std

    def __call__(self, img, target, rng):
        draws = draw_train(rng, self.train_short, self.flip_p)
        return train_transform(img, target, draws, self.max_size, self.mean, self.std)

    @staticmethod
    def collate(samples, allocate=np.empty):
        return pad_batch(samples, allocate)


class DetectionEvalSample:
    """The evaluation transform for the loader: ``(image, position, rng) -> (data, [position,
    scale, resized height, resized width])`` through a :class:`~.detection.
    DetectionTransform`."""

    joint = True

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, img, position, rng):
        data, scale = self.transform(img)
        return data, np.array([position, scale, data.shape[1], data.shape[2]], np.float64)

    @staticmethod
    def collate(samples, allocate=np.empty):
        data = _padded_images([d for d, _ in samples], allocate)
        return data, np.stack([meta for _, meta in samples])


def _padded_images(images, allocate):
    height = max(d.shape[1] for d in images)
    width = max(d.shape[2] for d in images)
    data = allocate((len(images), 3, height, width), np.float32)
    data[...] = 0
    for k, d in enumerate(images):
        data[k, :, :d.shape[1], :d.shape[2]] = d
    return data


def pad_batch(samples, allocate=np.empty):
    """``(data (B, 3, H, W), (boxes (B, M, 4), labels (B, M)[, masks (B, M, H, W)]))`` of
    ``(data, DetectionTarget)`` samples, padded as the module doc says; ``data`` is made by
    ``allocate(shape, dtype)`` (the loader's shared memory)."""
    data = _padded_images([d for d, _ in samples], allocate)
    rows = max(1, max(len(t.boxes) for _, t in samples))
    boxes = np.full((len(samples), rows, 4), -1, np.float32)
    labels = np.full((len(samples), rows), -1, np.float32)
    for k, (_, t) in enumerate(samples):
        boxes[k, :len(t.boxes)], labels[k, :len(t.labels)] = t.boxes, t.labels
    if samples[0][1].masks is None:
        return data, (boxes, labels)
    masks = np.zeros((len(samples), rows) + data.shape[2:], np.float32)
    for k, (_, t) in enumerate(samples):
        masks[k, :len(t.masks), :t.masks.shape[1], :t.masks.shape[2]] = t.masks
    return data, (boxes, labels, masks)
