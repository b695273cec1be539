"""What a pack admits (:mod:`resnest.gluon.data.validate`): its counts and class names read
from the records, and an index that does not cover every record refused, naming the bytes."""
import pytest

from _records import damaged_copy, offsets
from resnest.gluon.data import rec_info
from resnest.gluon.utils.errors import UserError

NUM = 21                                   # the photo crops of conftest.photo_rec


def test_rec_info_counts_and_errors(photo_rec, tmp_path):
    info = rec_info(photo_rec)
    assert (info.num_samples, info.classes, info.present) == (NUM, 3, 3)
    assert info.class_names == ['c0', 'c1', 'c2']        # the folders make_class_tree wrote
    with pytest.raises(UserError):
        rec_info(str(tmp_path / 'missing.rec'))
    bad = tmp_path / 'bad'
    (tmp_path / 'bad.rec').write_bytes(b'x' * 10)
    (tmp_path / 'bad.idx').write_text('0\t999\n')
    with pytest.raises(UserError, match='corrupt'):
        rec_info(str(bad) + '.rec')


def test_index_that_misses_records_is_refused(photo_rec, tmp_path):
    starts = offsets(photo_rec[:-4])
    partial = damaged_copy(photo_rec[:-4], str(tmp_path / 'partial'),
                           edit_idx=lambda lines: lines[:10])
    with pytest.raises(UserError, match=f'only up to byte {starts[10]} .*every record'):
        rec_info(partial + '.rec')
    holes = damaged_copy(photo_rec[:-4], str(tmp_path / 'holes'),
                         edit_idx=lambda lines: lines[:3] + lines[4:])
    with pytest.raises(UserError, match=f'leaves out bytes {starts[3]}..{starts[4]}'):
        rec_info(holes + '.rec')
