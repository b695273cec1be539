"""Training and evaluation loaders, sharded across (Horovod) ranks.

Two training back-ends behind one interface (``set_epoch``, ``len``, ``num_samples``, and
iteration yielding ``(data, label, valid)``):

* ``'rec'`` -- MXNet's C++ ``ImageRecordIter`` (:mod:`.cpp_loader`; fastest): random-resized
  crop, flip, colour jitter, PCA lighting, normalisation.
* ``'python'`` -- :class:`PythonLoader` over the records (:mod:`.samples`) with the transforms
  of :mod:`.transforms` and :mod:`.autoaugment` in worker processes that live as long as the
  loader (:mod:`.workers`): an exact global permutation per epoch, AutoAugment, and the
  EfficientNet-style bicubic crop at >= 320.

``backend='auto'`` picks ``'python'`` when the C++ iterator cannot do what is asked. Evaluation
always uses :class:`PythonLoader` with :func:`~resnest.gluon.data.transforms.eval_transform`,
over a ``.rec`` or a class-folder tree (:func:`eval_loader`). Who reads what is decided in
:mod:`.sharding`.
"""
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from multiprocessing import shared_memory
from concurrent.futures.process import BrokenProcessPool

import cv2
import numpy as np

from ..pretrained import IMAGENET_MEAN, IMAGENET_MEAN_255, IMAGENET_STD, IMAGENET_STD_255
from ..utils.errors import UserError
from ..utils.seed import derive_seed
from .samples import FolderSamples, RecordSamples
from .sharding import train_shard, val_plan
from .transforms import color_normalize_chw, resized_crop_box
from .validate import rec_info
from .workers import init_worker, ordered_results, start_worker_server, worker_context

__all__ = ["RecordSamples", "FolderSamples", "PythonLoader", "TrainTransform", "train_loader",
           "train_plan", "eval_loader"]


class _Dataset:
    """Item ``(position, seed)`` -> ``(CHW float32, target)``; a batch of items -> stacked
    numpy arrays (what a worker process sends back).

    The target is a class label (a number) unless the transform is ``joint``: then it takes
    the image and the sample's target together (an image and its mask, cropped and flipped
    alike), ``transform(img, target, rng) -> (data, target array)``. A joint transform with a
    ``collate(samples, allocate)`` makes its batches itself (detection: images of any size
    padded, boxes and image scales as a tuple of arrays)."""

    def __init__(self, samples, transform):
        self.samples, self.transform = samples, transform
        self.bgr = getattr(transform, "bgr", False)      # decode in the transform's order
        self.joint = getattr(transform, "joint", False)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, item):
        position, seed = item
        img, target = self.samples.read(position, bgr=self.bgr)
        rng = np.random.RandomState(seed)
        if self.joint:
            return self.transform(img, target, rng)
        return self.transform(img, rng), np.float32(target)

    def batch(self, items, allocate=np.empty):
        """Stacked ``(data, targets)``, both allocated by ``allocate(shape, dtype)``."""
        collate = getattr(self.transform, "collate", None) if self.joint else None
        if collate is not None:
            return collate([self[item] for item in items], allocate)
        first, target = self[items[0]]
        data = allocate((len(items),) + first.shape, first.dtype)
        target = np.asarray(target)
        targets = allocate((len(items),) + target.shape, target.dtype)
        data[0], targets[0] = first, target
        for k, item in enumerate(items[1:], 1):
            image, target = self[item]
            if image.shape != first.shape or np.shape(target) != targets.shape[1:]:
                raise UserError(f"sample {item[0]} of {_where(self.samples)} comes out of "
                                f"its transform as {image.shape}, unlike the first of its "
                                f"batch ({first.shape}); images of different sizes cannot "
                                "share a batch: use batch size 1.")
            data[k], targets[k] = image, target
        return data, targets


def _where(samples):
    return getattr(samples, "path", None) or getattr(samples, "root", "the data")


_WORKER = {}


def _setup_worker(dataset):
    _WORKER["dataset"] = dataset


def _load_batch(items):
    """In a worker: the batch, its arrays written straight into shared memory (a pickled 19 MB
    batch through a pipe cost ~20% of the AutoAugment worker's time). Returns ``(shared
    memory name, shape, dtype)`` of the data and of the targets; the parent copies them out
    and unlinks them. The memory stays registered with the resource tracker the processes
    share, which removes it should the parent die first."""
    made = []

    def allocate(shape, dtype):
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        made.append(shared_memory.SharedMemory(create=True, size=max(size, 1)))
        return np.ndarray(shape, dtype, buffer=made[-1].buf)
    try:
        arrays = _WORKER["dataset"].batch(items, allocate)
        out = tuple((shm.name, a.shape, a.dtype.str) for shm, a in zip(made, arrays))
        if len(out) == 1:           # a collate() that keeps its targets: sent pickled
            out += ((None, arrays[1], None),)
    except BaseException:
        for shm in made:
            shm.close()
            shm.unlink()
        raise
    del arrays
    for shm in made:
        shm.close()
    return out


def _read_shared(name, shape, dtype):
    shm = shared_memory.SharedMemory(name=name)
    try:
        return np.array(np.ndarray(shape, dtype, buffer=shm.buf))
    finally:
        shm.close()
        shm.unlink()


def _from_shared(result, ctx):
    """``(data NDArray, targets numpy)`` of a worker's batch (copied out of its shared
    memory, then unlinked)."""
    import mxnet as mx
    (data_name, shape, dtype), target = result
    try:
        shm = shared_memory.SharedMemory(name=data_name)
        try:
            data = mx.nd.array(np.ndarray(shape, dtype, buffer=shm.buf), ctx=ctx, dtype=dtype)
        finally:
            shm.close()
            shm.unlink()
    finally:
        targets = target[1] if target[0] is None else _read_shared(*target)
    return data, targets


def _unlink(result):
    """Free a worker's batch that will not be read (an iteration stopped early)."""
    for name, _, _ in result:
        if name is None:
            continue
        try:
            shm = shared_memory.SharedMemory(name=name)
        except FileNotFoundError:
            continue
        shm.close()
        shm.unlink()


class PythonLoader:
    """Batches ``(data, target, valid)`` of a sample source (targets: class labels, or
    masks with a joint transform, see :class:`_Dataset`), decoded and transformed in worker
    processes; the order of an epoch comes from ``plan(epoch) -> (items, valid)`` (items are
    ``(position, seed)``, ``valid`` the real samples per batch).

    With ``num_workers > 1`` the worker processes are started once, at the first batch, and
    serve every later epoch and evaluation (no re-fork after Horovod or CUDA started: they
    come from a clean fork server there, see :mod:`.workers`); they die with this process.
    A sample's augmentation depends only on its seed, so the batches are the same for any
    worker count. :meth:`close` stops them early.
    """

    def __init__(self, samples, transform, plan, batch_size, num_workers, ctx=None):
        self.samples, self.batch_size = samples, batch_size
        self._dataset = _Dataset(samples, transform)
        self._plan, self._ctx = plan, ctx
        self._num_workers = num_workers if num_workers > 1 else 0
        self._pool = None
        self._start = 0
        self._items, self._valid = plan(0)
        if self._num_workers:
            start_worker_server(shared_memory=True)

    @property
    def num_samples(self):
        """Real (non-padding) samples this rank sees per epoch."""
        return int(sum(self._valid))

    def __len__(self):
        return len(self._valid)

    def set_epoch(self, epoch, start_batch=0):
        """Select the epoch's order (a pure function of ``(seed, epoch)``) and skip its first
        ``start_batch`` batches (for resuming; no image of a skipped batch is decoded)."""
        self._items, self._valid = self._plan(int(epoch))
        self._start = int(start_batch)

    def _batches(self, batches, ctx):
        """``(data NDArray, label numpy)`` of each batch, in order."""
        import mxnet as mx
        if not self._num_workers:
            for batch in batches:
                data, label = self._dataset.batch(batch)
                yield mx.nd.array(data, ctx=ctx, dtype=data.dtype), label
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._num_workers, mp_context=worker_context(shared_memory=True),
                initializer=init_worker, initargs=(_setup_worker, self._dataset))
        with closing(ordered_results(self._pool, _load_batch, batches, 2 * self._num_workers,
                                     discard=_unlink)) as stream:
            for _, result in stream:
                yield _from_shared(result, ctx)

    def __iter__(self):
        import mxnet as mx
        size = self.batch_size
        batches = [self._items[i:i + size] for i in range(0, len(self._items), size)]
        batches, counts = batches[self._start:], self._valid[self._start:]
        ctx = self._ctx or mx.cpu()
        try:
            with closing(self._batches(batches, ctx)) as stream:
                for (data, label), count in zip(stream, counts):
                    yield data, _on_device(label, ctx), count
        except BrokenProcessPool:
            self.close()
            raise UserError("a data loader worker process died (killed or out of memory); "
                            "rerun with fewer data workers or a smaller batch.") from None

    def set_workers(self, num_workers):
        """Use ``num_workers`` worker processes from the next batch on (0: decode in this
        process); the batches do not change."""
        self.close()
        self._num_workers = int(num_workers)

    @property
    def worker_pids(self):
        """Process ids of the running workers (empty before the first batch)."""
        return sorted(self._pool._processes) if self._pool is not None else []

    def close(self):
        """Stop the worker processes (they are started again if the loader is used again)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __del__(self):
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _on_device(label, ctx):
    """A batch's targets as NDArrays on ``ctx``: float32, except a tuple of target arrays
    (detection) and float64 arrays (a detection batch's image scales), which keep their
    dtype."""
    import mxnet as mx
    if isinstance(label, tuple):
        return tuple(mx.nd.array(a, ctx=ctx, dtype=a.dtype) for a in label)
    return mx.nd.array(label, ctx=ctx, dtype=np.float64 if label.dtype == np.float64
                       else np.float32)


class TrainTransform:
    """Training augmentation of one image (picklable, for worker processes): optional
    AutoAugment, random-resized crop (EfficientNet-style at >= 320), flip, colour jitter, PCA
    lighting, normalisation; RGB float32 CHW out. The input is RGB, or BGR with ``bgr`` (as
    decoded: the loaders ask for it, which saves a conversion pass over the whole image; a
    ``policy`` must then take BGR too)."""

    def __init__(self, size, jitter, lighting_std, policy=None, min_area=None, mirror=True,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, bgr=False):
        self.size, self.mean, self.std = size, mean, std
        self.jitter, self.lighting_std, self.policy = jitter, lighting_std, policy
        self.min_area, self.mirror, self.bgr = min_area, mirror, bgr

    def __call__(self, img, rng):
        # The crop box is drawn first, so AutoAugment computes only the pixels it keeps.
        box, interp = resized_crop_box(*img.shape[:2], self.size, rng,
                                       efficientnet=self.size >= 320, min_area=self.min_area)
        if self.policy is not None:
            img = self.policy(img, rng, box)
        else:
            top, left, h, w = box
            img = img[top:top + h, left:left + w]
        img = cv2.resize(img, (self.size, self.size), interpolation=interp)
        if rng.rand() < 0.5 and self.mirror:
            img = cv2.flip(img, 1)
        return color_normalize_chw(img, self.jitter, self.lighting_std, self.mean, self.std,
                                   rng, bgr=self.bgr)


def _check_batch(batch_size, rank, num_ranks):
    if batch_size < 1 or num_ranks < 1 or not 0 <= rank < num_ranks:
        raise UserError(f"need batch_size >= 1 and 0 <= rank < num_ranks, got batch_size="
                        f"{batch_size}, rank={rank}, num_ranks={num_ranks}.")


def train_loader(rec_path, batch_size, input_size=224, rank=0, num_ranks=1, seed=0,
                 num_workers=4, jitter=0.4, lighting=0.1, auto_aug=False, ctx=None,
                 backend="auto", min_area=None, mirror=True):
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
    jitter, lighting : float
        Colour-jitter strength (brightness, contrast, saturation) and PCA-lighting std.
    auto_aug : bool
        AutoAugment with the ImageNet policy (forces the Python path).
    ctx : mx.Context or None
        Where to put the batches (default: CPU).
    backend : {'auto', 'rec', 'python'}
    min_area : float or None
        Smallest area fraction of the random crop (default 0.08; 0.1 for inputs >= 320).
    mirror : bool
        Random horizontal flips (off for data where left and right differ, like digits).

    Returns
    -------
    loader
        ``loader.set_epoch(epoch, start_batch=0)`` before each epoch; ``len(loader)`` batches,
        the same on every rank; ``loader.num_samples`` images; iteration yields
        ``(data, label, valid)`` with data ``(B, 3, input_size, input_size)`` float32 normalised
        with the published mean/std, label ``(B,)`` float32, ``valid == B``.
    """
    _check_batch(batch_size, rank, num_ranks)
    wants_python = auto_aug or input_size >= 320
    if backend == "auto":
        backend = "python" if wants_python else "rec"
    if backend == "rec" and wants_python:
        raise UserError("AutoAugment and inputs >= 320 need the Python loader; use "
                        "--loader-backend python or auto.")
    if backend == "rec":
        from .cpp_loader import ImageRecordIterLoader
        num_samples = rec_info(rec_path).num_samples
        return ImageRecordIterLoader(rec_path, num_samples, batch_size, input_size, rank,
                                     num_ranks, seed, num_workers, IMAGENET_MEAN_255,
                                     IMAGENET_STD_255, jitter, lighting, ctx,
                                     min_area=min_area or 0.08, mirror=mirror)
    if backend != "python":
        raise UserError(f"backend must be 'auto', 'rec' or 'python', not {backend!r}.")
    policy = None
    if auto_aug:
        from .autoaugment import ImageNetPolicy
        policy = ImageNetPolicy(bgr=True)
    transform = TrainTransform(input_size, jitter, lighting, policy, min_area, mirror, bgr=True)
    samples = RecordSamples(rec_path)                  # checks the .rec/.idx pair once
    plan = train_plan(samples.num_samples, batch_size, rank, num_ranks, seed)
    return PythonLoader(samples, transform, plan, batch_size, num_workers, ctx)


def train_plan(num_samples, batch_size, rank, num_ranks, seed):
    """``plan(epoch) -> (items, valid)`` of a Python training loader (any task): this
    rank's shard of the epoch's global permutation, each sample with its own augmentation
    seed."""
    def plan(epoch):
        positions = train_shard(num_samples, batch_size, rank, num_ranks, seed, epoch)
        seeds = np.random.RandomState(derive_seed(seed, epoch, 1)).randint(
            0, 2 ** 31 - 1, size=num_samples)
        items = [(int(p), int(seeds[p])) for p in positions]
        return items, [batch_size] * (len(items) // batch_size)
    return plan


def eval_loader(source, batch_size, transform, rank=0, num_ranks=1, num_workers=4, ctx=None):
    """Evaluation loader: every image of ``source`` exactly once over all ranks.

    Parameters
    ----------
    source : str or samples
        A ``.rec`` file (``.idx`` beside it), a class-folder tree, or a sample source
        (:class:`RecordSamples`, :class:`FolderSamples`, ...).
    transform : callable
        Usually :func:`~resnest.gluon.data.transforms.eval_transform` of the model.

    Returns
    -------
    PythonLoader
        Every rank yields the same number of batches; the last ones are padded (by
        repeating images) and ``valid`` says how many samples at the start of each batch are
        real (0 on a rank whose share is used up). ``loader.samples.classes`` is the class
        count of the data.
    """
    _check_batch(batch_size, rank, num_ranks)
    if isinstance(source, str):
        source = FolderSamples(source) if os.path.isdir(source) else RecordSamples(source)
    if len(source) < num_ranks:
        raise UserError(f"{_where(source)} has {len(source)} images, fewer than {num_ranks} "
                        "ranks; evaluate with fewer ranks.")

    def plan(epoch):
        positions, valid = val_plan(len(source), batch_size, rank, num_ranks)
        return [(p, 0) for p in positions], valid
    return PythonLoader(source, transform, plan, batch_size, num_workers, ctx)
