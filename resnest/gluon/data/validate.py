"""Facts about an existing ``.rec/.idx`` pair: its size, classes and class names (after a
cheap structural check of every record header against the index, which also reads every
label and checks it against the class list), or a full integrity check that decodes every
image (``im2rec.py --check``).

A pack is admitted only if it can be read exactly: every label a whole number in
``[0, classes)``, where the classes are those of ``PREFIX.classes.txt`` when it exists (a
validation set may lack some classes), else ``0 .. largest label``. A label of 12 with 3
class names, or of -1, is refused when the pack is opened, naming the record.
"""
import math
import os
from dataclasses import dataclass
from typing import List, NamedTuple, Optional

from ..utils.errors import UserError
from .classfile import read_classes
from .folder import BadImage, decode_image
from .recordio import (RecordError, first_label, read_idx, read_record, skip_record,
                       unpack_payload)


class RecInfo(NamedTuple):
    """What a pack holds: ``num_samples`` records of ``classes`` classes, named by
    ``class_names`` (None for a pack without ``PREFIX.classes.txt``), of which ``present``
    occur in its labels."""
    num_samples: int
    classes: int
    class_names: Optional[List[str]] = None
    present: int = 0


def _prefix(rec_path):
    return rec_path[:-4] if rec_path.endswith('.rec') else rec_path


def _label_at(fd, frec, offset, size):
    try:
        return first_label(fd, offset, size)
    except RecordError:            # a first part cut short inside the header: read it whole
        payload, _ = read_record(frec, offset)
        return unpack_payload(payload)[0][0]


def check_index(rec_path, entries):
    """Check that the index ``entries`` ``[(key, offset), ...]`` tiles ``rec_path``: a record
    header (magic word, first-part flag, a length inside the file) at every offset, and the
    indexed records, in offset order, cover the file from byte 0 to its end with no record
    left out. Reads the headers only (at most 44 bytes per record), never an image: seconds
    for ImageNet's 1.28 million. Returns every record's first label, in ``entries`` order.

    Raises
    ------
    RecordError
        Saying which record (key), byte and file is wrong.
    """
    size, expected = os.path.getsize(rec_path), 0
    labels = {}
    fd = os.open(rec_path, os.O_RDONLY)
    try:
        with open(rec_path, 'rb') as frec:
            for key, offset in sorted(entries, key=lambda e: e[1]):
                if offset > expected:
                    raise RecordError(f'the .idx leaves out bytes {expected}..{offset} of the '
                                      '.rec (it does not cover every record)')
                if offset < expected:
                    raise RecordError(f'the .idx entry of record {key} points at byte {offset}, '
                                      f'inside the record before it')
                try:
                    expected = skip_record(fd, offset, size)
                    labels[offset] = _label_at(fd, frec, offset, size)
                except RecordError as err:
                    raise RecordError(f'record {key} of the .idx: {err}') from None
    finally:
        os.close(fd)
    if expected != size:
        raise RecordError(f'the .idx covers the .rec only up to byte {expected} of {size} '
                          '(it does not cover every record)')
    return [labels[offset] for _, offset in entries]


def _check_labels(rec_path, entries, labels, names):
    """The class count; UserError naming the first record whose label is not a class."""
    bound = len(names) if names is not None else None
    for (key, _), label in zip(entries, labels):
        if not (math.isfinite(label) and label >= 0 and label == int(label)
                and (bound is None or label < bound)):
            what = (f"the {bound} classes of {_prefix(rec_path)}.classes.txt" if bound is not None
                    else "a class index (a whole number, 0 or more)")
            raise UserError(f'record {key} of {rec_path} has label {label:g}, which is not one '
                            f'of {what}; repack the images with scripts/dataset/im2rec.py')
    return bound if bound is not None else int(max(labels)) + 1


def rec_info(rec_path):
    """The :class:`RecInfo` of ``rec_path`` (``PREFIX.rec`` beside ``PREFIX.idx``), after
    :func:`check_index` and the label check (so every loader, train and val, checks its files
    at start-up); see :func:`checked_index`."""
    return checked_index(rec_path)[1]


def checked_index(rec_path):
    """``(entries, RecInfo)``: the ``(key, offset)`` entries of ``PREFIX.idx``, checked against
    ``PREFIX.rec`` by :func:`check_index`, their labels against the class list, and what the
    pack holds.

    Raises
    ------
    UserError
        The .rec or .idx is missing, the .idx does not match the .rec, or a label is not a
        class.
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
        labels = check_index(rec_path, entries)
    except (RecordError, UnicodeDecodeError) as err:
        raise UserError(f'{rec_path} or its .idx is corrupt ({err}); run scripts/dataset/'
                        f'im2rec.py --check {prefix} to see which, then rebuild it') from None
    names = read_classes(prefix)
    classes = _check_labels(rec_path, entries, labels, names)
    return entries, RecInfo(len(entries), classes, names, len(set(labels)))


@dataclass
class CheckReport:
    """Result of :func:`check_records`.

    ``bad`` is None or the first problem ``(key, byte offset, reason)``, and ``file`` the one
    to blame: ``'rec'`` (a record that does not parse, or images that do not decode, counted
    in ``bad_images``) or ``'idx'`` (an index that misses records or points beside them).
    """
    records: int = 0
    indexed: int = 0
    bad: tuple = None
    file: str = None
    bad_images: int = 0
    covered: int = 0


def _scan(frec, size, report, decode):
    """Walk every record in file order (decoding each image with ``decode``); returns
    ``{offset: key}``. Stops at a record that does not parse; counts images that fail."""
    starts, offset = {}, 0
    while offset < size:
        key = None
        try:
            payload, nxt = read_record(frec, offset)
            _, key, image = unpack_payload(payload)
        except RecordError as err:
            report.bad, report.file = (key, offset, str(err)), 'rec'
            return starts
        if decode:
            try:
                decode_image(image)
            except BadImage as err:
                report.bad_images += 1
                if report.bad is None:
                    report.bad, report.file = (key, offset, str(err)), 'rec'
        starts[offset] = key
        report.records += 1
        offset = nxt
    return starts


def _check_entries(entries, starts, report):
    """Every index entry at a record start with its key, and every record indexed."""
    for key, offset in entries:
        if offset not in starts:
            report.bad = (key, offset, 'the index points at a byte where no record starts')
        elif starts[offset] != key:
            report.bad = (key, offset, f'index key {key} but the record says {starts[offset]}')
        if report.bad is not None:
            report.file = 'idx'
            return
    indexed = {offset for _, offset in entries}
    report.covered = len(indexed)
    if report.covered < len(starts):
        missing = min(set(starts) - indexed)
        report.bad = (starts[missing], missing, f'the index covers {report.covered} of the '
                      f'{len(starts)} records; the first one left out is here')
        report.file = 'idx'


def check_records(prefix, decode=True):
    """Validate ``PREFIX.rec`` against ``PREFIX.idx``: every record parses and (with
    ``decode``) its image decodes completely, libjpeg's damage warnings counting as errors;
    every index offset is the start of a record with that key, and every record is indexed.

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
    if report.bad is None:
        _check_entries(entries, starts, report)
    return report
