"""The C++ training back-end: MXNet's ``ImageRecordIter`` made epoch-aware and rank-even.

Facts this relies on (checked by the data-loader tests on MXNet 1.9.1): with
``path_imgidx``, ``num_parts=P`` and ``part_index=k`` the iterator reads records
``[k * ceil(N / P), (k + 1) * ceil(N / P))`` of the index, and with ``shuffle=True`` it permutes
them with ``seed``; augmentation draws come from ``seed_aug``; with one preprocessing thread the
output is bit-for-bit reproducible. A new iterator is built every epoch so the epoch's order is
a pure function of ``(seed, epoch)``.
"""
import math

import mxnet as mx

from ..utils.errors import UserError
from ..utils.seed import derive_seed


def part_bounds(num_samples, part, parts):
    """Record range ``(begin, end)`` MXNet's indexed reader gives to part ``part`` of
    ``parts``."""
    step = math.ceil(num_samples / parts)
    return min(part * step, num_samples), min((part + 1) * step, num_samples)


class ImageRecordIterLoader:
    """MXNet's C++ ``ImageRecordIter`` for one rank; see :func:`resnest.gluon.data.train_loader`
    (``backend='rec'``). ``mean``/``std`` are on 0..255."""

    def __init__(self, rec_path, num_samples, batch_size, input_size, rank, num_ranks, seed,
                 num_workers, mean, std, jitter, lighting, ctx, min_area=0.08, mirror=True):
        if any(part_bounds(num_samples, p, num_ranks)[0] >= part_bounds(num_samples, p,
                                                                          num_ranks)[1]
               for p in range(num_ranks)):
            raise UserError(f'{rec_path} has too few images ({num_samples}) to give each of '
                            f'{num_ranks} ranks a share; use fewer ranks')
        self.batch_size, self._rank, self._ranks, self._seed = batch_size, rank, num_ranks, seed
        self._ctx = ctx
        self._epoch, self._start = 0, 0
        largest = math.ceil(num_samples / num_ranks)
        self._batches = math.ceil(largest / batch_size)
        self._args = dict(
            path_imgrec=rec_path, path_imgidx=rec_path[:-4] + '.idx',
            data_shape=(3, input_size, input_size), batch_size=batch_size,
            shuffle=True, num_parts=num_ranks, round_batch=True,
            preprocess_threads=max(1, num_workers), prefetch_buffer=4,
            random_resized_crop=True, min_random_area=min_area, max_random_area=1.0,
            min_aspect_ratio=3 / 4, max_aspect_ratio=4 / 3, rand_mirror=mirror,
            brightness=jitter, contrast=jitter, saturation=jitter, pca_noise=lighting,
            inter_method=1,
            mean_r=mean[0], mean_g=mean[1], mean_b=mean[2],
            std_r=std[0], std_g=std[1], std_b=std[2])

    @property
    def num_samples(self):
        """Images this rank sees per epoch (its block, padded by wrapping to full batches)."""
        return self._batches * self.batch_size

    def __len__(self):
        return self._batches

    def set_epoch(self, epoch, start_batch=0):
        """Select the epoch (block ``(rank + epoch) % num_ranks``, order from
        ``(seed, epoch)``); the first ``start_batch`` batches are decoded and dropped."""
        self._epoch, self._start = int(epoch), int(start_batch)

    def _iterator(self):
        return mx.io.ImageRecordIter(
            part_index=(self._rank + self._epoch) % self._ranks,
            seed=derive_seed(self._seed, self._epoch),
            seed_aug=derive_seed(self._seed, self._epoch, self._rank, 2),
            **self._args)

    def __iter__(self):
        source, produced = self._iterator(), 0
        while produced < self._batches:
            try:
                batch = source.next()
            except StopIteration:
                source.reset()  # a smaller block: wrap around to match the other ranks
                continue
            except mx.base.MXNetError as err:
                # The C++ reader stops on a record it cannot decode, with no record number.
                raise UserError(f"MXNet's C++ reader cannot decode a record of "
                                f"{self._args['path_imgrec']} ({str(err).splitlines()[0][:200]}"
                                f"); find it with scripts/dataset/im2rec.py --check "
                                f"{self._args['path_imgrec'][:-4]}, or train with "
                                "--loader-backend python, which names it.") from None
            produced += 1
            if produced <= self._start:
                continue
            data, label = batch.data[0], batch.label[0]
            # The iterator reuses its buffers on the next call: hand out copies.
            ctx = self._ctx or mx.cpu()
            data, label = data.copyto(ctx), label.copyto(ctx)
            yield data, label.astype('float32').reshape((-1,)), self.batch_size
