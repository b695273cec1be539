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
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import cv2

from ..utils.errors import UserError
from ..utils.files import read_regular
from ..utils.io import atomic_group
from ..utils.outputs import OutputLock, refuse_existing
from .classfile import check_names, name_problem, read_classes
from .folder import (MAX_PIXELS, BadImage, center_square, decode_image, jpeg_info,
                     resize_shorter)
from .listing import list_folder, lst_line, read_lst
from .recordio import encode_record, pack_payload
from .workers import ordered_map

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
        problem = name_problem(entry.path)
        if problem:
            raise BadImage(f'its path cannot be listed: {problem}')
        data = read_regular(os.path.join(root, entry.path))
        payload = pack_payload(entry.labels, entry.index, image_bytes(data, options))
    except BadImage as err:
        return None, str(err)
    except OSError as err:
        return None, f'cannot read: {err.strerror or err}'
    return encode_record(payload), None


def _encode_chunk(job, entries):
    root, options = job
    return [encode_entry(root, e, options) for e in entries]


def _encoded_in_order(root, entries, options, workers):
    """Yield ``(entry, record or None, reason)`` in list order, encoding on ``workers``."""
    threads = cv2.getNumThreads()
    if workers <= 1:
        cv2.setNumThreads(1)  # same code path and same bytes as a worker
    try:
        chunks = [entries[i:i + _CHUNK] for i in range(0, len(entries), _CHUNK)]
        for chunk, results in ordered_map(_encode_chunk, (root, options), chunks, workers,
                                          depth=4 * workers):
            for entry, (record, reason) in zip(chunk, results):
                yield entry, record, reason
    finally:
        cv2.setNumThreads(threads)


def pack_records(root, entries, prefix, options=PackOptions(), workers=1, strict=False,
                 progress=None, classes=None, force=False, extra_files=None, inputs=()):
    """Pack ``entries`` (image paths under ``root``) into ``PREFIX.rec/.idx/.lst`` (+
    ``.classes.txt`` when ``classes`` is given, ``.skipped.tsv``), as one group.

    Parameters
    ----------
    root : str
        Folder the entry paths are relative to.
    entries : list of ListEntry
        Records in the order they are written; ``index`` becomes the record key.
    prefix : str
        Output prefix. Existing outputs are refused unless ``force``; with it, they are
        replaced only when the new ones are complete, as a whole (the old ``.rec`` goes first,
        the new one comes last: a reader never sees an old ``.rec`` beside new side-cars).
    options : PackOptions
    workers : int
        Encoding processes; the output bytes do not depend on it.
    strict : bool
        Abort (UserError) at the first bad image instead of skipping it.
    progress : callable or None
        Called with the number of entries done since the last call.
    classes : list of str, optional
        The class names (label ``i`` is ``classes[i]``).
    force : bool
        Replace existing outputs; without it any file of the group that exists is refused.
    extra_files : dict, optional
        ``{suffix: text}`` of further side-cars written in the same group (``PREFIX +
        suffix``), e.g. the folder cache's ``.pack.json``.
    inputs : sequence of str
        Files ``entries`` and ``classes`` were read from (a ``PREFIX.lst`` packed under its
        own prefix): the group may replace them without ``force``.

    Returns
    -------
    PackResult

    Raises
    ------
    UserError
        An existing output without ``force``, another packer writing the same prefix, a bad
        image under ``strict``, no image that could be packed, a dead worker, or an unwritable
        output. Nothing is written then.
    """
    extra_files = dict(extra_files or {})
    names = ('.idx', '.lst', '.skipped.tsv') + (('.classes.txt',) if classes is not None
                                                 else ()) + tuple(extra_files) + ('.rec',)
    outputs = [os.path.abspath(prefix + ext) for ext in names]
    read = {os.path.abspath(p) for p in inputs}
    refuse_existing([outputs[-1]] + [p for p in outputs[:-1] if p not in read], force,
                    what='pack output')
    if classes is not None:
        check_names(classes, f'the classes of {prefix}')
    _make_parent(prefix)
    result, start = PackResult(), time.time()
    with OutputLock(prefix, what=f'the pack {prefix}', prefix=True):
        try:
            with atomic_group(outputs) as tmp:   # .rec last: it marks the group complete
                _fill_group(root, entries, options, workers, strict, progress, tmp, outputs,
                            result)
                texts = dict(extra_files)
                if classes is not None:
                    texts['.classes.txt'] = ''.join(f'{name}\n' for name in classes)
                for suffix, text in texts.items():
                    with open(tmp[os.path.abspath(prefix + suffix)], 'w', encoding='utf-8',
                              newline='\n') as fout:
                        fout.write(text)
                if result.packed == 0:
                    raise UserError(f'none of the {len(entries)} images could be packed into '
                                    f'{prefix}.rec (the first: {result.skipped[0][0]}: '
                                    f'{result.skipped[0][1]}); nothing was written')
        except BrokenProcessPool:
            raise UserError(f'a worker process died (killed or out of memory) while packing '
                            f'{prefix}.rec; nothing was written, rerun with fewer --workers') \
                from None
    result.seconds = time.time() - start
    return result


def _fill_group(root, entries, options, workers, strict, progress, tmp, outputs, result):
    idx_path, lst_path, skipped_path = outputs[:3]
    with open(tmp[outputs[-1]], 'wb') as frec, \
            open(tmp[idx_path], 'w', encoding='utf-8', newline='\n') as fidx, \
            closing(_encoded_in_order(root, entries, options, workers)) as stream:
        lst, skipped_lines = _write_stream(stream, frec, fidx, strict, result, progress)
    for path, lines in ((lst_path, lst), (skipped_path, ['path\treason\n'] + skipped_lines)):
        with open(tmp[path], 'w', encoding='utf-8', newline='\n') as fout:
            fout.writelines(lines)


def _tsv_field(text):
    """A path or reason as one TSV field: tabs, line breaks and backslashes escaped."""
    return text.replace('\\', '\\\\').replace('\t', '\\t').replace('\n', '\\n') \
        .replace('\r', '\\r')


def read_skipped(prefix):
    """``[(path, reason)]`` of ``PREFIX.skipped.tsv`` (escapes undone), the skipped images."""
    def field(text):
        return (text.replace('\\t', '\t').replace('\\n', '\n').replace('\\r', '\r')
                .replace('\\\\', '\\'))
    with open(prefix + '.skipped.tsv', encoding='utf-8') as f:
        rows = [line.rstrip('\n').split('\t') for line in f][1:]
    return [(field(path), field(reason)) for path, reason in rows]


def _write_stream(stream, frec, fidx, strict, result, progress):
    """Write the encoded records in order to ``frec``/``fidx``; returns the ``.lst`` lines and
    the ``skipped.tsv`` lines, and counts into ``result``."""
    lst, skipped_lines = [], []
    for entry, record, reason in stream:
        if record is None:
            if strict:
                raise UserError(f'{entry.path!r} is unusable ({reason}); fix or remove it, or '
                                'run without --strict to skip such files')
            result.skipped.append((entry.path, reason))
            skipped_lines.append(f'{_tsv_field(entry.path)}\t{_tsv_field(reason)}\n')
        else:
            frec.write(record)
            fidx.write(f'{entry.index}\t{result.rec_bytes}\n')
            lst.append(lst_line(entry))
            result.rec_bytes += len(record)
            result.packed += 1
        if progress is not None:
            progress(1)
    return lst, skipped_lines


def plan_image_folder(image_dir, lst=None, shuffle=False, seed=0):
    """What to pack: ``(entries, classes)`` of ``image_dir``'s class folders, or of the
    ``lst`` file (its classes from the ``.classes.txt`` beside it, None without one). Nothing
    is written.

    Raises
    ------
    UserError
        A missing folder or list, a folder without images, a class name that cannot be
        written.
    """
    if lst is not None:
        entries, classes = read_lst(lst), read_classes(os.path.splitext(lst)[0])
        if not os.path.isdir(image_dir):
            raise UserError(f'image folder {image_dir} does not exist; the paths in {lst} '
                            'are relative to it')
        return entries, classes
    classes, entries = list_folder(image_dir, shuffle=shuffle, seed=seed)
    return entries, classes


def _make_parent(prefix):
    parent = os.path.dirname(os.path.abspath(prefix))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as err:
        raise UserError(f'cannot create the output folder {parent}: {err.strerror}') from None
