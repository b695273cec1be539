"""MXNet's C++ record loader (:mod:`resnest.gluon.data.cpp_loader`): our parts of a pack are
the ones ``ImageRecordIter`` reads."""
import pytest

from resnest.gluon.data import rec_info
from resnest.gluon.data.cpp_loader import part_bounds

mx = pytest.importorskip('mxnet')


def test_part_bounds_match_mxnet(photo_rec):
    info = rec_info(photo_rec)
    for part in range(3):
        it = mx.io.ImageRecordIter(path_imgrec=photo_rec, path_imgidx=photo_rec[:-4] + '.idx',
                                   data_shape=(3, 32, 32), batch_size=1, num_parts=3,
                                   part_index=part, preprocess_threads=1)
        got = sum(1 for _ in it)
        begin, end = part_bounds(info.num_samples, part, 3)
        assert got == end - begin
