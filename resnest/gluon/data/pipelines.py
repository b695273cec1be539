"""Training and validation loaders over ``.rec`` files, sharded across (Horovod) ranks.

Two training back-ends behind one interface (``set_epoch``, ``len``, ``num_samples``, and
iteration yielding ``(data, label, valid)``):

* ``'rec'`` -- MXNet's C++ ``ImageRecordIter`` (fastest): random-resized crop, flip, colour
  jitter, PCA lighting, mean/std. MXNet's reader can only hand a rank a contiguous block of
  the file (an index file with a subset of the records makes it read the records in between
  too), so the per-epoch shuffle is: the file split into ``num_ranks`` equal blocks, block
  ``(rank + epoch) % num_ranks`` for this rank, shuffled inside with a seed derived from
  ``(seed, epoch)``. Pack training sets with ``im2rec.py --shuffle`` so blocks are random
  subsets (``prepare_imagenet.py`` does); then it is statistically a global shuffle.
* ``'python'`` -- gluon ``RecordFileDataset`` + ``DataLoader`` with the transforms in
  :mod:`.transforms` and :mod:`.autoaugment`: an exact global permutation per epoch,
  AutoAugment / RandAugment, and the EfficientNet-style bicubic crop for inputs >= 320.

``backend='auto'`` picks ``'python'`` when the C++ iterator cannot do what is asked.
Validation always uses the Python path, which reproduces the published evaluation crop exactly.
"""
import math

import cv2
import mxnet as mx
import numpy as np

from ..errors import UserError
from .recordio import unpack_payload
from .transforms import (color_jitter, eval_crop, interpolation_flag, lighting, normalize_chw,
                         random_resized_crop)
from .validate import rec_info

IMAGENET_MEAN = (123.68, 116.779, 103.939)
IMAGENET_STD = (58.393, 57.12, 57.375)


def derive_seed(*values):
    """A 31-bit seed that is a pure function of the integers ``values``."""
    return int(np.random.SeedSequence([int(v) for v in values]).generate_state(1)[0] >> 1)


def train_shard(num_samples, batch_size, rank, num_ranks, seed, epoch):
    """This rank's sample indices for one epoch of the Python training path.

    One global permutation from ``(seed, epoch)`` (the same on every rank), wrapped around to
    ``num_ranks * batch_size * batches`` entries so every rank gets the same number of full
    batches, then dealt out round-robin: rank ``r`` takes positions ``r, r + R, ...``.
    """
    batches = max(1, math.ceil(num_samples / (num_ranks * batch_size)))
    order = np.random.RandomState(derive_seed(seed, epoch)).permutation(num_samples)
    total = batches * batch_size * num_ranks
    order = np.resize(order, total)  # np.resize repeats from the start: padding by wrapping
    return order[rank::num_ranks]


def val_shard(num_samples, rank, num_ranks):
    """``range`` of record positions for this rank; shares differ by at most one and sum to
    ``num_samples``."""
    return range(num_samples * rank // num_ranks, num_samples * (rank + 1) // num_ranks)


class _Samples(mx.gluon.data.Dataset):
    """Items are ``(record position, sample seed)``; returns ``(CHW float32, label)``."""

    def __init__(self, rec_path, transform):
        self._records = mx.gluon.data.RecordFileDataset(rec_path)
        self._transform = transform

    def __len__(self):
        return len(self._records)

    def __getitem__(self, item):
        position, seed = item
        labels, _, image = unpack_payload(self._records[int(position)])
        bgr = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise UserError(f'record {position} does not decode; run im2rec.py --check')
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        return self._transform(rgb, np.random.RandomState(seed)), np.float32(labels[0])


class TrainTransform:
    """Training augmentation of one RGB image (picklable, for DataLoader workers)."""

    def __init__(self, size, mean, std, jitter, lighting_std, policy=None, min_area=None,
                 mirror=True):
        self.size, self.mean, self.std = size, mean, std
        self.jitter, self.lighting_std, self.policy = jitter, lighting_std, policy
        self.min_area, self.mirror = min_area, mirror

    def __call__(self, img, rng):
        if self.policy is not None:
            from PIL import Image
            img = np.asarray(self.policy(Image.fromarray(img), rng))
        img = random_resized_crop(img, self.size, rng, efficientnet=self.size >= 320,
                                  min_area=self.min_area)
        if rng.rand() < 0.5 and self.mirror:
            img = img[:, ::-1]
        out = color_jitter(img, self.jitter, rng) if self.jitter else img.astype(np.float32)
        if self.lighting_std:
            out = lighting(out, self.lighting_std, rng)
        return normalize_chw(out, self.mean, self.std)


class EvalTransform:
    """The published evaluation crop of one RGB image, then mean/std."""

    def __init__(self, crop_size, crop_ratio, interpolation, mean, std, crop_first=None):
        interpolation_flag(interpolation)
        self.args = (crop_size, crop_ratio, interpolation, crop_first)
        self.mean, self.std = mean, std

    def __call__(self, img, rng=None):
        size, ratio, interp, crop_first = self.args
        return normalize_chw(eval_crop(img, size, ratio, interp, crop_first), self.mean, self.std)


def eval_transform(crop_size=224, crop_ratio=0.875, interpolation='bilinear',
                   mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """The validation transform as a function ``RGB uint8 HWC -> normalized float32 CHW``."""
    return EvalTransform(crop_size, crop_ratio, interpolation, mean, std)


class RecordLoader:
    """Python-path loader; see :func:`train_loader` and :func:`val_loader`."""

    def __init__(self, rec_path, batch_size, transform, shard, num_workers, ctx=None):
        self._samples = _Samples(rec_path, transform)
        self._shard, self.batch_size = shard, batch_size
        self._num_workers, self._ctx = num_workers, ctx
        self._epoch, self._start = 0, 0
        self._plan = shard(0)

    @property
    def num_samples(self):
        """Real (non-padding) images this rank sees per epoch."""
        return int(sum(self._plan[1]))

    def __len__(self):
        return len(self._plan[0]) // self.batch_size

    def set_epoch(self, epoch, start_batch=0):
        """Select the epoch's order (a pure function of ``(seed, epoch)``) and skip its first
        ``start_batch`` batches (for resuming; no image of a skipped batch is decoded)."""
        self._epoch, self._start = int(epoch), int(start_batch)
        self._plan = self._shard(self._epoch)

    def __iter__(self):
        items, valid = self._plan
        batches = [items[i:i + self.batch_size] for i in range(0, len(items), self.batch_size)]
        counts = [int(sum(valid[i:i + self.batch_size]))
                  for i in range(0, len(items), self.batch_size)]
        batches, counts = batches[self._start:], counts[self._start:]
        if not batches:
            return
        loader = mx.gluon.data.DataLoader(self._samples, batch_sampler=batches,
                                          num_workers=self._num_workers if
                                          self._num_workers > 1 else 0)
        for (data, label), count in zip(loader, counts):
            if self._ctx is not None:
                data, label = data.as_in_context(self._ctx), label.as_in_context(self._ctx)
            yield data, label.astype('float32'), count


def _check_batch(batch_size, rank, num_ranks):
    if batch_size < 1 or num_ranks < 1 or not 0 <= rank < num_ranks:
        raise UserError(f'need batch_size >= 1 and 0 <= rank < num_ranks, got batch_size='
                        f'{batch_size}, rank={rank}, num_ranks={num_ranks}')


def train_loader(rec_path, batch_size, input_size=224, rank=0, num_ranks=1, seed=0,
                 num_workers=4, crop_ratio=0.875, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 jitter=0.4, lighting=0.1, auto_aug=False, ctx=None, backend='auto',
                 rand_aug=None, min_area=None, mirror=True):
    """Training loader over ``rec_path`` for one rank.

    Parameters
    ----------
    rec_path : str
        ``PREFIX.rec`` with ``PREFIX.idx`` beside it.
    batch_size : int
        Per-rank batch size.
    input_size : int
        Side of the square training crop; >= 320 uses the EfficientNet-style bicubic crop.
    rank, num_ranks : int
        This worker and the number of workers (Horovod rank and size).
    seed : int
        Base seed: the order and augmentation of every epoch derive from ``(seed, epoch)``.
    num_workers : int
        Decoding threads (``'rec'``) or processes (``'python'``). With ``'python'`` the output
        does not depend on it; with 1 both back-ends are bit-for-bit reproducible.
    crop_ratio : float
        Unused by the random crop; accepted so a config can pass one value everywhere.
    mean, std : tuple of float
        Per-channel RGB normalization on 0..255.
    jitter, lighting : float
        Colour-jitter strength (brightness, contrast, saturation) and PCA-lighting std.
    auto_aug : bool
        AutoAugment with the ImageNet policy (forces the Python path).
    ctx : mx.Context or None
        Where to put the batches (default: CPU).
    backend : {'auto', 'rec', 'python'}
    rand_aug : tuple (num_ops, magnitude) or None
        RandAugment instead of AutoAugment (Python path).
    min_area : float or None
        Smallest area fraction of the random crop (default 0.08; 0.1 for inputs >= 320).
    mirror : bool
        Random horizontal flips (off for data where left and right differ, like digits).

    Returns
    -------
    loader
        ``loader.set_epoch(epoch, start_batch=0)`` before each epoch (``start_batch`` skips
        the first batches to resume mid-epoch); ``len(loader)`` batches, the same on every
        rank; ``loader.num_samples`` images; iteration yields ``(data, label, valid)`` with
        data ``(B, 3, input_size, input_size)`` float32, label ``(B,)`` float32, valid == B.
    """
    _check_batch(batch_size, rank, num_ranks)
    info = rec_info(rec_path)
    wants_python = auto_aug or rand_aug or input_size >= 320
    if backend == 'auto':
        backend = 'python' if wants_python else 'rec'
    if backend == 'rec' and wants_python:
        raise UserError('AutoAugment, RandAugment and inputs >= 320 need backend="python"')
    if backend == 'rec':
        from .record_iter import RecordIterLoader
        return RecordIterLoader(rec_path, info.num_samples, batch_size, input_size, rank,
                                num_ranks, seed, num_workers, mean, std, jitter, lighting, ctx,
                                min_area=min_area or 0.08, mirror=mirror)
    if backend != 'python':
        raise UserError(f'backend must be "auto", "rec" or "python", not {backend!r}')
    policy = None
    if auto_aug:
        from .autoaugment import ImageNetPolicy
        policy = ImageNetPolicy()
    elif rand_aug:
        from .autoaugment import RandAugment
        policy = RandAugment(*rand_aug)
    transform = TrainTransform(input_size, mean, std, jitter, lighting, policy, min_area,
                               mirror)

    def shard(epoch):
        positions = train_shard(info.num_samples, batch_size, rank, num_ranks, seed, epoch)
        seeds = np.random.RandomState(derive_seed(seed, epoch, 1)).randint(
            0, 2 ** 31 - 1, size=info.num_samples)
        return [(int(p), int(seeds[p])) for p in positions], [1] * len(positions)
    return RecordLoader(rec_path, batch_size, transform, shard, num_workers, ctx)


def val_loader(rec_path, batch_size, crop_size=224, crop_ratio=0.875, interpolation='bilinear',
               mean=IMAGENET_MEAN, std=IMAGENET_STD, rank=0, num_ranks=1, num_workers=4,
               ctx=None, crop_first=None):
    """Validation loader with the published evaluation preprocessing, every image once.

    ``interpolation='bilinear'``: resize the short side to ``ceil(crop_size / crop_ratio)``,
    centre crop (resnest14..101, fast variants). ``'bicubic'``: centre crop ``crop_ratio`` of
    the short side, resize to ``crop_size`` (resnest200/269, ``crop_ratio = s / (s + 32)``).
    ``crop_first`` overrides that choice. Rank ``r`` reads a contiguous share; shares sum to
    the dataset size exactly. Every rank yields the same number of batches; the last ones are
    padded (by repeating images) and ``valid`` says how many samples at the start of each batch
    are real (it can be 0 on a rank with a smaller share).
    """
    _check_batch(batch_size, rank, num_ranks)
    info = rec_info(rec_path)
    if info.num_samples < num_ranks:
        raise UserError(f'{rec_path} has {info.num_samples} images, fewer than {num_ranks} '
                        'ranks; evaluate with fewer ranks')
    try:
        transform = EvalTransform(crop_size, crop_ratio, interpolation, mean, std, crop_first)
    except ValueError as err:
        raise UserError(str(err)) from None
    largest = math.ceil(info.num_samples / num_ranks)
    batches = math.ceil(largest / batch_size)

    def shard(epoch):
        share = list(val_shard(info.num_samples, rank, num_ranks))
        padded = [share[i % len(share)] for i in range(batches * batch_size)]
        valid = [1 if i < len(share) else 0 for i in range(len(padded))]
        return [(p, 0) for p in padded], valid
    return RecordLoader(rec_path, batch_size, transform, shard, num_workers, ctx)
