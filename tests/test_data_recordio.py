"""The RecordIO format (:mod:`resnest.gluon.data.recordio`), written by us and read by MXNet's
own reader."""
import pytest

from resnest.gluon.data.recordio import encode_record, pack_payload

mx = pytest.importorskip('mxnet')


def test_record_writer_splits_payloads_containing_the_magic_word(tmp_path):
    magic = (0xCED7230A).to_bytes(4, 'little')
    payload = pack_payload((1.0,), 7, b'ab' + b'\x00\x00' + magic + b'xyz' + magic + b'q')
    path = str(tmp_path / 'm.rec')
    open(path, 'wb').write(encode_record(payload))
    reader = mx.recordio.MXRecordIO(path, 'r')
    assert reader.read() == payload
