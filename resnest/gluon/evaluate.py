"""Evaluation loop: exact top-1 / top-5 counts and separate model-only and end-to-end speed.

Each batch carries ``valid``, the number of real images at its start (the last batches of a
rank are padded), so every image is counted exactly once whatever the batch size and the number
of ranks; the counts of all ranks are summed, never their accuracies averaged.
"""
import time
from dataclasses import dataclass, field

import mxnet as mx
import numpy as np

__all__ = ["EvalResult", "FolderLoader", "topk_correct", "evaluate"]


@dataclass
class EvalResult:
    """Counts and timings of one evaluation (of one rank until :meth:`merge`)."""

    correct1: int = 0
    correct5: int = 0
    total: int = 0
    model_seconds: float = 0.0      # forward passes only, synchronised
    total_seconds: float = 0.0      # including decoding and pre-processing
    batch_sizes: list = field(default_factory=list)

    @property
    def top1(self):
        return self.correct1 / self.total if self.total else 0.0

    @property
    def top5(self):
        return self.correct5 / self.total if self.total else 0.0

    def as_dict(self, ranks=1):
        """JSON-ready summary; throughputs are for ``ranks`` ranks working in parallel."""
        model_ips = self.total / self.model_seconds if self.model_seconds else 0.0
        e2e_ips = self.total / self.total_seconds if self.total_seconds else 0.0
        return dict(top1=round(100 * self.top1, 4), top5=round(100 * self.top5, 4),
                    images=self.total, correct1=self.correct1, correct5=self.correct5,
                    model_images_per_s=round(model_ips * ranks, 2),
                    end_to_end_images_per_s=round(e2e_ips * ranks, 2))


def topk_correct(logits, labels, valid, k=5):
    """``(top-1 hits, top-k hits)`` among the first ``valid`` rows of numpy ``logits``."""
    logits, labels = logits[:valid], labels[:valid].astype(np.int64)
    k = min(k, logits.shape[1])
    # argpartition: the k best classes in any order (no full sort of 1000 classes).
    best = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    top1 = logits.argmax(axis=1)
    return int((top1 == labels).sum()), int((best == labels[:, None]).any(axis=1).sum())


def evaluate(net, loader, ctx=None, progress=None):
    """Run ``net`` over ``loader`` (yielding ``(data, label, valid)``) and count hits.

    ``progress``, if given, is called as ``progress(batches_done, images_done)``.
    """
    ctx = ctx or mx.cpu()
    result = EvalResult()
    start = time.perf_counter()
    for i, (data, label, valid) in enumerate(loader):
        valid = int(valid)
        data = data.as_in_context(ctx)
        tick = time.perf_counter()
        out = net(data)
        logits = out.astype("float32").asnumpy()      # asnumpy() synchronises
        result.model_seconds += time.perf_counter() - tick
        labels = label.asnumpy() if isinstance(label, mx.nd.NDArray) else np.asarray(label)
        c1, c5 = topk_correct(logits, labels, valid)
        result.correct1 += c1
        result.correct5 += c5
        result.total += valid
        result.batch_sizes.append(data.shape[0])
        if progress is not None:
            progress(i + 1, result.total)
    result.total_seconds = time.perf_counter() - start
    return result


class _FolderSamples(mx.gluon.data.Dataset):
    def __init__(self, root, transform):
        self._folder = mx.gluon.data.vision.ImageFolderDataset(root, flag=1)
        self._transform = transform

    def __len__(self):
        return len(self._folder)

    def __getitem__(self, index):
        img, label = self._folder[index]           # RGB HWC uint8 NDArray
        return self._transform(img.asnumpy()), np.float32(label)


class FolderLoader:
    """Evaluation batches ``(data, label, valid)`` over a class-folder tree for one rank,
    with the same sharding and padding contract as :func:`resnest.gluon.data.val_loader`."""

    def __init__(self, root, batch_size, transform, rank=0, num_ranks=1, num_workers=4):
        from .data.pipelines import val_shard
        self._samples = _FolderSamples(root, transform)
        self.classes = len(self._samples._folder.synsets)
        total = len(self._samples)
        share = list(val_shard(total, rank, num_ranks))
        batches = -(-(-(-total // num_ranks)) // batch_size)      # ceil(ceil(total/R)/B)
        padded = [share[i % len(share)] if share else 0 for i in range(batches * batch_size)]
        self._batches = [padded[i:i + batch_size] for i in range(0, len(padded), batch_size)]
        self._valid = [max(0, min(batch_size, len(share) - i * batch_size))
                       for i in range(batches)]
        self.num_samples = len(share)
        self._workers, self._start = num_workers, 0

    def __len__(self):
        return len(self._batches)

    def set_epoch(self, epoch, start_batch=0):
        """Start the next iteration at batch ``start_batch`` (the epoch changes nothing)."""
        self._start = int(start_batch)

    def __iter__(self):
        batches, counts = self._batches[self._start:], self._valid[self._start:]
        if not batches:
            return
        loader = mx.gluon.data.DataLoader(self._samples, batch_sampler=batches,
                                          num_workers=self._workers if self._workers > 1 else 0)
        for (data, label), valid in zip(loader, counts):
            yield data, label, valid
