"""MXNet's RecordIO container and image-record header, read and written without MXNet.

Facts of the format (dmlc-core ``recordio``): each record is one or more parts
``magic(u32 0xced7230a) | lrec(u32: cflag << 29 | length) | data | zero padding to 4 bytes``.
A payload containing the magic word at a 4-byte aligned position is split there (cflag 1 =
first part, 2 = middle, 3 = last; the magic word itself is dropped and re-inserted by the
reader). An image record's payload starts with the header ``IfQQ`` = (flag, label, id, id2);
if ``flag > 0`` the label is the ``flag`` float32 values that follow the header.
The ``.idx`` file has one ``key<TAB>byte offset`` line per record.

Writing it here keeps MXNet out of the packer (fast start, clean worker forks); the tests check
every file against MXNet's own ``MXIndexedRecordIO`` and ``ImageRecordIter``.
"""
import os
import struct

import numpy as np

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack('<I', MAGIC)
_HEADER = struct.Struct('<IfQQ')
_LREC_MASK = (1 << 29) - 1


class RecordError(Exception):
    """A .rec file that does not follow the format; the message says what and where."""


def pack_payload(labels, key, image_bytes):
    """Image-record payload: header (one label, or ``flag`` labels after it) + image bytes."""
    if len(labels) == 1:
        return _HEADER.pack(0, float(labels[0]), key, 0) + image_bytes
    extra = np.asarray(labels, dtype=np.float32).tobytes()
    return _HEADER.pack(len(labels), 0.0, key, 0) + extra + image_bytes


def unpack_payload(payload):
    """Split a payload into ``(labels tuple, key, image bytes)``."""
    if len(payload) < _HEADER.size:
        raise RecordError('record shorter than the image header')
    flag, label, key, _ = _HEADER.unpack_from(payload)
    start = _HEADER.size
    if flag == 0:
        return (label,), key, payload[start:]
    end = start + 4 * flag
    labels = tuple(np.frombuffer(payload[start:end], dtype=np.float32).tolist())
    return labels, key, payload[end:]


def encode_record(payload):
    """Bytes of one RecordIO record holding ``payload`` (split at aligned magic words)."""
    parts, start = [], 0
    aligned = len(payload) & ~3
    pos = payload.find(_MAGIC_BYTES)
    while 0 <= pos < aligned:
        if pos % 4 == 0:
            parts.append((1 if start == 0 else 2, payload[start:pos]))
            start = pos + 4
        pos = payload.find(_MAGIC_BYTES, pos + 1)
    parts.append((3 if start else 0, payload[start:]))
    out = []
    for cflag, data in parts:
        out.append(struct.pack('<II', MAGIC, (cflag << 29) | len(data)))
        out.append(data)
    pad = -len(payload) % 4
    out.append(b'\x00' * pad)
    return b''.join(out)


def _part_header(head, pos, first):
    """``(cflag, length)`` of the 8-byte part header ``head`` read at byte ``pos``."""
    if len(head) < 8:
        raise RecordError(f'file ends inside the record header at byte {pos}')
    magic, lrec = struct.unpack('<II', head)
    if magic != MAGIC:
        raise RecordError(f'no record starts at byte {pos}')
    cflag, length = lrec >> 29, lrec & _LREC_MASK
    if cflag not in ((0, 1) if first else (2, 3)):
        raise RecordError(f'bad continuation flag {cflag} at byte {pos}')
    return cflag, length


def read_record(fobj, offset):
    """Read the record starting at ``offset``; returns ``(payload, next_offset)``.

    Raises
    ------
    RecordError
        No magic word at ``offset``, a bad continuation flag, or the file ends inside.
    """
    fobj.seek(offset)
    chunks, pos = [], offset
    while True:
        cflag, length = _part_header(fobj.read(8), pos, first=not chunks)
        data = fobj.read(length)
        if len(data) < length:
            raise RecordError(f'file ends inside the record at byte {pos}')
        chunks.append(data)
        pos += 8 + length
        if cflag in (0, 3):
            break
    total = sum(len(c) for c in chunks) + 4 * (len(chunks) - 1)
    pos += -total % 4
    return _MAGIC_BYTES.join(chunks), pos


def skip_record(fd, offset, file_size):
    """Offset of the record after the one starting at ``offset``, from the part headers alone
    (``os.pread`` on the file descriptor ``fd``; the payload is not read).

    Raises
    ------
    RecordError
        As :func:`read_record`, or a length that runs past ``file_size``.
    """
    pos, total, parts = offset, 0, 0
    while True:
        cflag, length = _part_header(os.pread(fd, 8, pos), pos, first=not parts)
        pos, total, parts = pos + 8 + length, total + length, parts + 1
        if pos > file_size:
            raise RecordError(f'the record at byte {offset} is longer than the file')
        if cflag in (0, 3):
            return pos + (-(total + 4 * (parts - 1)) % 4)


def first_label(fd, offset, file_size):
    """The first label of the image record starting at ``offset`` (``os.pread`` on ``fd``),
    from its headers alone: 36 bytes at most are read.

    Raises
    ------
    RecordError
        The record is too short to hold an image header, or its label count runs past it.
    """
    head = os.pread(fd, 8 + _HEADER.size, offset)
    if len(head) < 8 + _HEADER.size:
        raise RecordError(f'the record at byte {offset} is shorter than an image header')
    length = struct.unpack_from('<I', head, 4)[0] & _LREC_MASK
    if length < _HEADER.size:
        raise RecordError(f'the record at byte {offset} is shorter than an image header')
    flag, label, _, _ = _HEADER.unpack_from(head, 8)
    if flag == 0:
        return float(label)
    if length < _HEADER.size + 4 or offset + 8 + _HEADER.size + 4 > file_size:
        raise RecordError(f'the record at byte {offset} declares {flag} labels it does not hold')
    return float(struct.unpack('<f', os.pread(fd, 4, offset + 8 + _HEADER.size))[0])


def read_idx(idx_path):
    """``[(key, offset), ...]`` from an .idx file, in file order.

    Raises
    ------
    RecordError
        A line that is not ``integer<TAB>integer``.
    """
    entries = []
    with open(idx_path, 'r', encoding='utf-8') as fidx:
        for number, line in enumerate(fidx, 1):
            if not line.strip():
                continue
            fields = line.split('\t')
            try:
                entries.append((int(fields[0]), int(fields[1])))
            except (ValueError, IndexError):
                raise RecordError(f'line {number} of {idx_path} is not "key<TAB>offset"') from None
    return entries
