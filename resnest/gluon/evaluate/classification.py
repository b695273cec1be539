"""The classification evaluator: exact top-1 / top-5 counts and mean loss, summed over every rank.

Training (every ``--eval-frequency`` epochs), ``verify.py`` and the tests all call
:func:`evaluate`. Each batch of a loader carries ``valid``, the number of real images at its
start (the last batches of a rank are padded so all ranks run the same number of batches), so
every image is counted exactly once whatever the batch size and the number of ranks. The counts
of all ranks are summed, never their accuracies averaged. Model time (forward passes, waited
for) and end-to-end time (including decoding) are measured separately.
"""
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["EvalResult", "batch_counts", "evaluate"]


@dataclass
class EvalResult:
    """Counts of one evaluation, summed over all ranks. Accuracies are fractions; the dicts
    for people (:meth:`metrics`, :meth:`as_dict`) give percentages."""

    correct1: int = 0
    correct5: int = 0
    total: int = 0
    loss_sum: float = 0.0
    model_images_per_s: float = 0.0        # all ranks together
    end_to_end_images_per_s: float = 0.0

    @property
    def top1(self):
        return self.correct1 / self.total if self.total else 0.0

    @property
    def top5(self):
        return self.correct5 / self.total if self.total else 0.0

    @property
    def loss(self):
        return self.loss_sum / self.total if self.total else 0.0

    def metrics(self):
        """The training log's fields: ``top1``/``top5`` in %, ``val_loss``, ``val_samples``."""
        return {"top1": 100.0 * self.top1, "top5": 100.0 * self.top5, "val_loss": self.loss,
                "val_samples": self.total}

    def as_dict(self):
        """JSON-ready summary (accuracies in %)."""
        return dict(top1=round(100 * self.top1, 4), top5=round(100 * self.top5, 4),
                    images=self.total, correct1=self.correct1, correct5=self.correct5,
                    loss=round(self.loss, 6),
                    model_images_per_s=round(self.model_images_per_s, 2),
                    end_to_end_images_per_s=round(self.end_to_end_images_per_s, 2))


def batch_counts(logits, labels, valid, k=5):
    """``(top-1 hits, top-k hits, summed cross-entropy)`` over the first ``valid`` rows.

    ``logits`` is a numpy ``(B, classes)`` array, ``labels`` the ``(B,)`` class indices.
    """
    logits = np.asarray(logits[:valid], dtype=np.float64)
    labels = np.asarray(labels[:valid]).astype(np.int64)
    k = min(k, logits.shape[1])
    # argpartition: the k best classes in any order (no full sort of 1000 classes).
    best = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    top1 = logits.argmax(axis=1)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    loss = float((log_norm - shifted[np.arange(len(labels)), labels]).sum())
    return int((top1 == labels).sum()), int((best == labels[:, None]).any(axis=1).sum()), loss


def _forward(net, data, contexts):
    """Logits (numpy) of one batch, split over ``contexts`` (several GPUs) when there are
    several; reading them back waits for the computation."""
    import mxnet as mx
    if len(contexts) == 1:
        return net(data.as_in_context(contexts[0])).astype("float32").asnumpy()
    parts = mx.gluon.utils.split_and_load(data, contexts, even_split=False)
    outs = [net(part) for part in parts]
    return np.concatenate([o.astype("float32").asnumpy() for o in outs])


def evaluate(net, loader, dist=None, contexts=None, progress=None):
    """Run ``net`` over ``loader`` (yielding ``(data, label, valid)``) and count hits.

    Parameters
    ----------
    net : callable
        Takes a float32 NCHW batch, returns logits.
    loader : iterable
        ``(data, label, valid)`` batches; only the first ``valid`` rows count.
    dist : resnest.gluon.utils.distributed.Dist, optional
        Sums the counts (and the per-rank speeds) over all ranks; None for one process.
    contexts : list of mx.Context, optional
        Devices to split each batch over (default: ``dist.contexts``, else the CPU).
    progress : callable, optional
        Called as ``progress(batches_done, images_done)`` after every batch (also batches
        that are pure padding), e.g. a progress bar or a watchdog beat.

    Returns
    -------
    EvalResult
        The same on every rank.
    """
    import mxnet as mx
    contexts = contexts or (dist.contexts if dist is not None else [mx.cpu()])
    c1 = c5 = n = 0
    loss_sum = model_seconds = 0.0
    start = time.perf_counter()
    for i, (data, label, valid) in enumerate(loader):
        valid = int(valid)
        if valid > 0:
            tick = time.perf_counter()
            logits = _forward(net, data, contexts)
            model_seconds += time.perf_counter() - tick
            labels = label.asnumpy() if hasattr(label, "asnumpy") else np.asarray(label)
            hits1, hits5, loss = batch_counts(logits, labels, valid)
            c1, c5, n, loss_sum = c1 + hits1, c5 + hits5, n + valid, loss_sum + loss
        if progress is not None:
            progress(i + 1, n)
    total_seconds = time.perf_counter() - start
    local = [c1, c5, n, loss_sum, n / model_seconds if model_seconds else 0.0,
             n / total_seconds if total_seconds else 0.0]
    if dist is not None:
        local = dist.allreduce_sum(local, name="eval_counts")
    c1, c5, n, loss_sum, model_ips, e2e_ips = (float(v) for v in local)
    return EvalResult(int(round(c1)), int(round(c5)), int(round(n)), loss_sum, model_ips,
                      e2e_ips)
