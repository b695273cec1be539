"""Facts about an existing ``.rec/.idx`` pair: its size and classes, or a full integrity check."""
import os
from dataclasses import dataclass
from typing import NamedTuple

from ..utils.errors import UserError
from .folder import BadImage, decode_image
from .listing import read_classes, read_lst
from .recordio import RecordError, read_idx, read_record, unpack_payload


class RecInfo(NamedTuple):
    """Size of a record file: ``num_samples`` records, ``classes`` classes."""
    num_samples: int
    classes: int


def _prefix(rec_path):
    return rec_path[:-4] if rec_path.endswith('.rec') else rec_path


def _labels_of_records(rec_path, offsets):
    labels = []
    with open(rec_path, 'rb') as frec:
        for offset in offsets:
            payload, _ = read_record(frec, offset)
            labels.append(unpack_payload(payload)[0][0])
    return labels


def rec_info(rec_path):
    """Number of samples and classes of ``rec_path`` (``PREFIX.rec`` beside ``PREFIX.idx``).

    ``classes`` comes from ``PREFIX.classes.txt`` when present (a validation set may lack some
    classes), else from the largest label in ``PREFIX.lst``, else from the record headers.

    Raises
    ------
    UserError
        The .rec or .idx is missing, or the .idx does not match the .rec.
    """
    prefix = _prefix(rec_path)
    rec_path, idx_path = prefix + '.rec', prefix + '.idx'
    for path in (rec_path, idx_path):
        if not os.path.isfile(path):
            raise UserError(f'{path} does not exist; build it with scripts/dataset/im2rec.py')
    try:
        entries = read_idx(idx_path)
        if not entries:
            raise RecordError(f'{idx_path} is empty')
        size = os.path.getsize(rec_path)
        if max(offset for _, offset in entries) >= size:
            raise RecordError(f'{idx_path} points past the end of {rec_path}')
        classes = read_classes(prefix + '.classes.txt')
        if classes is not None:
            return RecInfo(len(entries), len(classes))
        if os.path.isfile(prefix + '.lst'):
            listed = read_lst(prefix + '.lst')
            if len(listed) == len(entries):
                return RecInfo(len(entries), int(max(e.labels[0] for e in listed)) + 1)
        labels = _labels_of_records(rec_path, [offset for _, offset in entries])
        return RecInfo(len(entries), int(max(labels)) + 1)
    except (RecordError, UnicodeDecodeError) as err:
        raise UserError(f'{rec_path} or its .idx is corrupt ({err}); rebuild it with '
                        'scripts/dataset/im2rec.py') from None


@dataclass
class CheckReport:
    """Result of :func:`check_records`; ``bad`` is None or ``(key, byte offset, reason)``."""
    records: int = 0
    indexed: int = 0
    bad: tuple = None


def _scan(frec, size, report, decode):
    """Walk every record in file order; returns ``{offset: key}`` or stops at the first bad."""
    starts, offset = {}, 0
    while offset < size:
        key = None
        try:
            payload, nxt = read_record(frec, offset)
            _, key, image = unpack_payload(payload)
            if decode:
                decode_image(image)
        except (RecordError, BadImage) as err:
            report.bad = (key, offset, str(err))
            return starts
        starts[offset] = key
        report.records += 1
        offset = nxt
    return starts


def check_records(prefix, decode=True):
    """Validate ``PREFIX.rec`` against ``PREFIX.idx``: every record parses and (with
    ``decode``) its image decodes completely, and every index offset is the start of a record
    with that key. Stops at the first problem and reports it in ``CheckReport.bad``.

    Raises
    ------
    UserError
        The .rec or .idx is missing or the .idx is unreadable.
    """
    prefix = _prefix(prefix)
    for path in (prefix + '.rec', prefix + '.idx'):
        if not os.path.isfile(path):
            raise UserError(f'{path} does not exist; give the PREFIX of a .rec/.idx pair')
    try:
        entries = read_idx(prefix + '.idx')
    except (RecordError, UnicodeDecodeError) as err:
        raise UserError(f'{prefix}.idx is unreadable ({err})') from None
    report = CheckReport(indexed=len(entries))
    with open(prefix + '.rec', 'rb') as frec:
        starts = _scan(frec, os.path.getsize(prefix + '.rec'), report, decode)
    if report.bad is not None:
        return report
    for key, offset in entries:
        if offset not in starts:
            report.bad = (key, offset, 'index points at a byte where no record starts')
            break
        if starts[offset] != key:
            report.bad = (key, offset, f'index key {key} but the record says {starts[offset]}')
            break
    return report
