"""The embedded real data set: scikit-learn's handwritten digits as a class-folder tree.

1,797 real 8x8 grey scans of the digits 0-9 (UCI "optdigits", shipped inside scikit-learn, so
no download), upscaled to ``size`` x ``size`` RGB JPEGs and split per class into train and val.
"""
import os

import cv2
import numpy as np

from ..utils.errors import UserError
from ..utils.io import generated_folder_done, publish_folder, staging_folder


def split_indices(labels, val_fraction, seed):
    """Stratified split: per class, a seeded permutation; the first ``round(n * fraction)``
    go to val. Returns sorted ``(train, val)`` index arrays."""
    rng = np.random.RandomState(seed)
    train, val = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        cut = int(round(len(members) * val_fraction))
        val.extend(members[:cut])
        train.extend(members[cut:])
    return np.sort(train), np.sort(val)


def digit_image(pixels, size):
    """One 8x8 digit (values 0..16) -> ``size`` x ``size`` x 3 uint8, dark ink on white."""
    grey = (255.0 - np.asarray(pixels, np.float32).reshape(8, 8) * (255.0 / 16.0))
    grey = cv2.resize(grey, (size, size), interpolation=cv2.INTER_CUBIC)
    grey = np.clip(grey + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def _select(indices, labels, classes, per_class, seed):
    """The ``indices`` whose label is in ``classes``, at most ``per_class`` of each (a seeded
    draw), sorted."""
    rng = np.random.RandomState(seed + 1)
    keep = []
    for cls in classes:
        members = indices[labels[indices] == cls]
        if per_class is not None:
            members = np.sort(rng.permutation(members)[:per_class])
        keep.extend(members)
    return np.sort(np.asarray(keep, dtype=int))


def write_digits(out_dir, size=32, val_fraction=0.2, seed=0, classes=None,
                 train_per_class=None):
    """Write ``out_dir/{train,val}/<digit>/<index>.jpg``; idempotent.

    ``classes`` (digits, default all ten) and ``train_per_class`` (a cap on the training images
    of each class, e.g. a few dozen labels for fine-tuning) select a subset; the split itself
    is the same for any subset, so the digits 0-4 and 5-9 never share an image.

    Returns
    -------
    dict or None
        ``{'train': n, 'val': m}`` when written; None when ``out_dir`` already holds a complete
        set made with the same settings.

    Raises
    ------
    UserError
        Bad settings, or ``out_dir`` holds something else.
    """
    classes = sorted(set(range(10) if classes is None else (int(c) for c in classes)))
    if size < 8 or not 0 < val_fraction < 1:
        raise UserError('size must be >= 8 and val-fraction between 0 and 1')
    if not classes or classes[0] < 0 or classes[-1] > 9 or len(classes) < 2:
        raise UserError(f'classes must be two or more digits 0..9, got {classes}')
    if train_per_class is not None and train_per_class < 1:
        raise UserError(f'train-per-class must be at least 1, got {train_per_class}')
    settings = {'size': size, 'val_fraction': val_fraction, 'seed': seed}
    if classes != list(range(10)) or train_per_class is not None:
        settings.update(classes=classes, train_per_class=train_per_class)
    if generated_folder_done(out_dir, settings, 'digits'):
        return None
    from sklearn.datasets import load_digits
    digits = load_digits()
    staging = staging_folder(out_dir)
    counts = {}
    for split, indices in zip(('train', 'val'), split_indices(digits.target, val_fraction, seed)):
        indices = _select(indices, digits.target, classes,
                          train_per_class if split == 'train' else None, seed)
        for index in indices:
            folder = os.path.join(staging, split, str(digits.target[index]))
            os.makedirs(folder, exist_ok=True)
            cv2.imwrite(os.path.join(folder, f'{index:04d}.jpg'),
                        digit_image(digits.data[index], size), [cv2.IMWRITE_JPEG_QUALITY, 95])
        counts[split] = len(indices)
    publish_folder(staging, out_dir, {'settings': settings, 'counts': counts})
    return counts
