"""Packs for tests: a copy of a .rec/.idx pair with chosen damage, and a pack read back with
MXNet's own reader (the reference every reader of ours is held to)."""
import shutil


def offsets(prefix):
    """The byte offsets of ``PREFIX.idx``, in its order."""
    with open(prefix + '.idx') as f:
        return [int(line.split('\t')[1]) for line in f]


def keys(prefix):
    """The record keys of ``PREFIX.idx``, in its order."""
    with open(prefix + '.idx') as f:
        return [int(line.split('\t')[0]) for line in f]


def damaged_copy(prefix, dest, edit_rec=None, edit_idx=None, side_cars=()):
    """Copy ``PREFIX.rec``/``.idx`` to ``DEST.rec``/``.idx``, ``edit_rec(bytearray, offsets)``
    changing the records in place and ``edit_idx(lines)`` returning the new index lines; the
    ``side_cars`` (e.g. ``'.classes.txt'``) are copied unchanged. Returns ``dest``."""
    with open(prefix + '.rec', 'rb') as f:
        data = bytearray(f.read())
    with open(prefix + '.idx') as f:
        lines = f.read().splitlines(keepends=True)
    if edit_rec:
        edit_rec(data, offsets(prefix))
    with open(dest + '.rec', 'wb') as f:
        f.write(bytes(data))
    with open(dest + '.idx', 'w') as f:
        f.write(''.join(edit_idx(lines) if edit_idx else lines))
    for ext in side_cars:
        shutil.copy(prefix + ext, dest + ext)
    return dest


def read_all(prefix):
    """``{key: (label, image)}`` of a pack, read by MXNet's MXIndexedRecordIO and
    ``unpack_img`` (BGR images)."""
    import mxnet as mx
    rec = mx.recordio.MXIndexedRecordIO(prefix + '.idx', prefix + '.rec', 'r')
    out = {}
    for key in rec.keys:
        header, img = mx.recordio.unpack_img(rec.read_idx(key))
        out[key] = (header.label, img)
    rec.close()
    return out
