"""The RecordIO packer: image files -> ``PREFIX.rec`` / ``.idx`` / ``.lst`` (+ ``.skipped.tsv``).

Design, for a tool people can trust:

* Worker processes only read, decode, resize and encode; the parent is the single writer and
  writes records strictly in list order, so the output is byte-identical for any worker count.
* Everything is written under temporary names and renamed when complete (``.rec`` last,
  :func:`resnest.gluon.utils.io.atomic_group`), so a dead worker, an error or Ctrl-C never
  leaves a ``.rec`` that looks finished.
* A worker that dies (killed, out of memory) is detected (the pool breaks) and aborts the run;
  workers die with the packer (:mod:`.workers`), even on ``kill -9``.
* Bad images are skipped with a reason, listed in ``PREFIX.skipped.tsv`` and counted.
"""
import os
import time
from contextlib import closing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import cv2

from ..utils.errors import UserError
from ..utils.io import atomic_group
from .folder import (MAX_PIXELS, BadImage, center_square, decode_image, jpeg_info,
                     resize_shorter)
from .listing import list_folder, lst_line, read_classes, read_lst, write_classes
from .recordio import encode_record, pack_payload
from .workers import init_worker, ordered_results, worker_context

_CHUNK = 16


@dataclass(frozen=True)
class PackOptions:
    """How each image is stored.

    Attributes
    ----------
    resize : int
        Shorter side in pixels after resizing; 0 keeps the size.
    quality : int
        JPEG quality (or PNG compression level when ``encoding='.png'``).
    center_crop : bool
        Crop the centred square before resizing.
    pass_through : bool
        Store the original bytes of plain upright JPEGs without re-encoding (others are
        re-encoded, since MXNet's decoder would not rotate or convert them).
    encoding : str
        '.jpg' or '.png'.
    max_pixels : int
        Images whose headers declare more pixels are skipped as bad, before decoding (0: no
        limit); the default is PIL's decompression-bomb limit.
    keep_damaged_jpeg : bool
        Keep JPEGs that libjpeg decodes with a damage warning ("Corrupt JPEG data: ...")
        instead of skipping them. A validation set packed to reproduce published accuracies
        wants every image its evaluation decoded, as it decoded it (the same warning comes
        from harmless trailing bytes and from real damage).
    """
    resize: int = 0
    quality: int = 95
    center_crop: bool = False
    pass_through: bool = False
    encoding: str = '.jpg'
    max_pixels: int = MAX_PIXELS
    keep_damaged_jpeg: bool = False


@dataclass
class PackResult:
    """What a packing run did."""
    packed: int = 0
    skipped: list = field(default_factory=list)
    seconds: float = 0.0
    rec_bytes: int = 0


def image_bytes(data, options):
    """Bytes to store for one image file's ``data`` under ``options``; raises BadImage."""
    if options.pass_through and not options.center_crop and not options.resize:
        info = jpeg_info(data)
        if info and info['orientation'] == 1 and info['components'] in (1, 3):
            # validates: raises on a too large, truncated or corrupt file
            decode_image(data, min_side=1, max_pixels=options.max_pixels,
                         damage_warnings=not options.keep_damaged_jpeg)
            return data
    min_side = options.resize if options.resize else 0
    img = decode_image(data, min_side=min_side, max_pixels=options.max_pixels,
                       damage_warnings=not options.keep_damaged_jpeg)
    if options.center_crop:
        img = center_square(img)
    if options.resize:
        img = resize_shorter(img, options.resize)
    if options.encoding == '.png':
        params = [cv2.IMWRITE_PNG_COMPRESSION, min(9, max(0, options.quality))]
    else:
        params = [cv2.IMWRITE_JPEG_QUALITY, options.quality]
    ok, buf = cv2.imencode(options.encoding, img, params)
    if not ok:
        raise BadImage('could not be encoded')
    return buf.tobytes()


def encode_entry(root, entry, options):
    """``(record bytes, None)`` for a good image, ``(None, reason)`` for a bad one."""
    try:
        with open(os.path.join(root, entry.path), 'rb') as fimg:
            data = fimg.read()
        payload = pack_payload(entry.labels, entry.index, image_bytes(data, options))
    except BadImage as err:
        return None, str(err)
    except OSError as err:
        return None, f'cannot read: {err.strerror or err}'
    return encode_record(payload), None


_WORKER = {}


def _setup_worker(root, options):
    _WORKER['root'], _WORKER['options'] = root, options


def _encode_chunk(entries):
    return [encode_entry(_WORKER['root'], e, _WORKER['options']) for e in entries]


def _encoded_in_order(root, entries, options, workers):
    """Yield ``(entry, record or None, reason)`` in list order, encoding on ``workers``."""
    if workers <= 1:
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)  # same code path and same bytes as a worker
        try:
            for entry in entries:
                yield (entry,) + encode_entry(root, entry, options)
        finally:
            cv2.setNumThreads(threads)
        return
    chunks = [entries[i:i + _CHUNK] for i in range(0, len(entries), _CHUNK)]
    pool = ProcessPoolExecutor(workers, mp_context=worker_context(), initializer=init_worker,
                               initargs=(_setup_worker, root, options))
    try:
        for chunk, results in ordered_results(pool, _encode_chunk, chunks, 4 * workers):
            for entry, (record, reason) in zip(chunk, results):
                yield entry, record, reason
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def pack_records(root, entries, prefix, options=PackOptions(), workers=1, strict=False,
                 progress=None):
    """Pack ``entries`` (image paths under ``root``) into ``PREFIX.rec/.idx/.lst``.

    Parameters
    ----------
    root : str
        Folder the entry paths are relative to.
    entries : list of ListEntry
        Records in the order they are written; ``index`` becomes the record key.
    prefix : str
        Output prefix; existing outputs are replaced only when the new ones are complete.
    options : PackOptions
    workers : int
        Encoding processes; the output bytes do not depend on it.
    strict : bool
        Abort (UserError) at the first bad image instead of skipping it.
    progress : callable or None
        Called with the number of entries done since the last call.

    Returns
    -------
    PackResult

    Raises
    ------
    UserError
        A bad image under ``strict``, a dead worker, or an unwritable output.
    """
    outputs = [os.path.abspath(prefix + ext) for ext in ('.idx', '.lst', '.skipped.tsv', '.rec')]
    idx_path, lst_path, skipped_path, rec_path = outputs
    result, start = PackResult(), time.time()
    try:
        with atomic_group(outputs) as tmp:      # .rec last: it appears only beside its .idx
            with open(tmp[rec_path], 'wb') as frec, \
                    open(tmp[idx_path], 'w', encoding='utf-8', newline='\n') as fidx, \
                    closing(_encoded_in_order(root, entries, options, workers)) as stream:
                lst, skipped_lines = _write_stream(stream, frec, fidx, strict, result, progress)
            for path, lines in ((lst_path, lst), (skipped_path, ['path\treason\n'] + skipped_lines)):
                with open(tmp[path], 'w', encoding='utf-8', newline='\n') as fout:
                    fout.writelines(lines)
    except BrokenProcessPool:
        raise UserError(f'a worker process died (killed or out of memory) while packing '
                        f'{prefix}.rec; nothing was written, rerun with fewer --workers') from None
    result.seconds = time.time() - start
    return result


def _write_stream(stream, frec, fidx, strict, result, progress):
    """Write the encoded records in order to ``frec``/``fidx``; returns the ``.lst`` lines and
    the ``skipped.tsv`` lines, and counts into ``result``."""
    lst, skipped_lines = [], []
    for entry, record, reason in stream:
        if record is None:
            if strict:
                raise UserError(f'{entry.path} is unusable ({reason}); fix or remove it, or '
                                'run without --strict to skip such files')
            result.skipped.append((entry.path, reason))
            skipped_lines.append(f'{entry.path}\t{reason}\n')
        else:
            frec.write(record)
            fidx.write(f'{entry.index}\t{result.rec_bytes}\n')
            lst.append(lst_line(entry))
            result.rec_bytes += len(record)
            result.packed += 1
        if progress is not None:
            progress(1)
    return lst, skipped_lines


def refuse_existing(prefix, extensions=('.rec', '.idx'), force=False):
    """UserError if an output ``PREFIX + ext`` exists and ``force`` is not set: packing onto a
    finished data set by mistake (a typo, a rerun) must not replace it silently."""
    found = [prefix + ext for ext in extensions if os.path.exists(prefix + ext)]
    if found and not force:
        raise UserError(f'{found[0]} already exists; pass --force to replace it, or choose '
                        'another output PREFIX')


def plan_image_folder(image_dir, prefix, lst=None, shuffle=False, seed=0, force=False,
                      outputs=('.rec', '.idx')):
    """List ``image_dir`` (or read the ``lst`` file) and write ``PREFIX.classes.txt``.

    The classes come from the sorted folder names, or from the ``.classes.txt`` beside
    ``lst`` if there is one. Returns the entries for :func:`pack_records`. Refuses (before
    writing anything) when one of the ``outputs`` extensions exists under ``prefix``, unless
    ``force``.

    Raises
    ------
    UserError
        An existing output without ``force``, a missing folder or list, a folder without
        images, an uncreatable output folder.
    """
    refuse_existing(prefix, outputs, force)
    if lst is not None:
        entries, classes = read_lst(lst), read_classes(os.path.splitext(lst)[0] + '.classes.txt')
        if not os.path.isdir(image_dir):
            raise UserError(f'image folder {image_dir} does not exist; the paths in {lst} '
                            'are relative to it')
    else:
        classes, entries = list_folder(image_dir, shuffle=shuffle, seed=seed)
    _make_parent(prefix)
    if classes is not None:
        write_classes(prefix + '.classes.txt', classes)
    return entries


def _make_parent(prefix):
    parent = os.path.dirname(os.path.abspath(prefix))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as err:
        raise UserError(f'cannot create the output folder {parent}: {err.strerror}') from None
