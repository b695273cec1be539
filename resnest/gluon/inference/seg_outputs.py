"""What ``segment.py`` writes for each image, and the rule that an earlier run's results are
never mixed with a new one's: the class-index PNG (palette), the overlay picture, the names.

The PNG follows the data's convention (:mod:`resnest.gluon.data.segmentation`, ADE20K's):
value ``c + 1`` for class ``c``, 0 reserved for "unlabelled" (never predicted), so a result
reads back as a mask. Up to 254 classes it is an 8-bit palette PNG (class colours from
:func:`palette`, value 0 black); with more, a 16-bit grey PNG.
"""
import colorsys
import os

import numpy as np

from ..utils.io import atomic_write
from ..utils.outputs import refuse_existing

__all__ = ["RESULTS", "palette", "output_names", "earlier_results", "write_label_png",
           "write_overlay"]

RESULTS = "segment.json"
_OVERLAY = ".overlay.jpg"


def palette(classes):
    """``(classes + 1, 3)`` uint8 colours: black for value 0, then one colour per class,
    hues spread by the golden ratio (neighbouring classes differ), two brightness levels."""
    colours = [(0, 0, 0)]
    for c in range(classes):
        hue = (c * 0.618033988749895) % 1.0
        value = 0.95 if c % 2 == 0 else 0.7
        colours.append(tuple(int(round(255 * v)) for v in colorsys.hsv_to_rgb(hue, 0.75,
                                                                              value)))
    return np.asarray(colours, np.uint8)


def output_names(items):
    """One output name per input item (:class:`~resnest.gluon.data.inputs.InputItem`): the
    file's stem (``file-KEY`` for a record of a ``.rec``), made unique by ``-2``, ``-3`` ...
    in input order."""
    names, taken = [], set()
    for item in items:
        stem = os.path.splitext(os.path.basename(item.path))[0]
        if item.offset >= 0:
            stem += "-" + item.name.rsplit("#", 1)[1]
        name, n = stem, 1
        while name in taken or name + ".png" == RESULTS:
            n += 1
            name = f"{stem}-{n}"
        taken.add(name)
        names.append(name)
    return names


def _ours(out):
    """Files in ``out`` that a segment.py run wrote: its results file, every overlay and the
    PNG beside each overlay."""
    try:
        files = set(os.listdir(out))
    except OSError:
        return []
    found = [RESULTS] if RESULTS in files else []
    for name in sorted(files):
        if name.endswith(_OVERLAY):
            found.append(name)
            png = name[:-len(_OVERLAY)] + ".png"
            if png in files:
                found.append(png)
    return [os.path.join(out, f) for f in found]


def earlier_results(out, names, force):
    """Refuse (one sentence) an ``out`` folder that holds an earlier run's results or files
    this run would write, unless ``force``; with ``force`` remove them (nothing else in the
    folder is touched). Returns the paths removed."""
    planned = [os.path.join(out, n + ext) for n in names for ext in (".png", _OVERLAY)]
    found = sorted(set(_ours(out)) | {p for p in planned if os.path.lexists(p)})
    refuse_existing(found, force, what="earlier result")
    for path in found:
        os.remove(path)
    return found


def write_label_png(path, labels, classes):
    """Write predicted classes ``labels`` (H, W) as the PNG described in the module doc."""
    from PIL import Image
    values = labels.astype(np.int64) + 1
    if classes <= 254:
        image = Image.fromarray(values.astype(np.uint8), mode="P")
        image.putpalette(palette(classes).ravel().tolist())
    else:
        image = Image.fromarray(values.astype(np.uint16), mode="I;16")

    def write(tmp):
        image.save(tmp, format="PNG")
    atomic_write(path, write)


def write_overlay(path, rgb, labels, classes, alpha=0.5):
    """Write ``rgb`` (H, W, 3 uint8) with each pixel blended ``alpha`` into its predicted
    class's colour, as a JPEG."""
    from PIL import Image
    colours = palette(classes)[labels.astype(np.int64) + 1].astype(np.float32)
    mixed = (1 - alpha) * rgb.astype(np.float32) + alpha * colours
    image = Image.fromarray(np.clip(np.rint(mixed), 0, 255).astype(np.uint8))

    def write(tmp):
        image.save(tmp, format="JPEG", quality=90)
    atomic_write(path, write)
