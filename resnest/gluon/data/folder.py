"""Image collections as they come: a tree of class folders, and image bytes of any common kind.

:func:`scan_class_folders` turns ``root/<class>/**/<image>`` into a sorted class list and a
labelled file list. :func:`decode_image` turns file bytes into an upright 3-channel BGR array
(EXIF orientation applied, grey / alpha / CMYK / 16-bit converted) or raises :class:`BadImage`
with a short reason. It refuses, before decoding, images above a pixel limit read from the
headers (a "decompression bomb": a small file that decodes to gigabytes), and it refuses
truncated or corrupt JPEG and PNG files, which OpenCV would otherwise decode silently with a
grey band. For large JPEGs it decodes at 1/2, 1/4 or 1/8 scale when that still leaves the
requested shorter side, which is several times faster.
"""
import io
import os
import struct
import threading
import warnings

import cv2
import numpy as np

from ..utils.files import walk_files
from .classfile import check_names

IMAGE_EXTENSIONS = frozenset(
    ['.jpg', '.jpeg', '.jpe', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.gif'])
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
            (2, cv2.IMREAD_REDUCED_COLOR_2))


# PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``): 1 GiB at 3 bytes a pixel / 4.
MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3
# libjpeg's messages for damaged data; it reports them as warnings, decodes on, and OpenCV
# only prints them, so a damaged file would come out as an image with a grey or garbled band.
_JPEG_DAMAGE = (b'Corrupt JPEG data', b'Premature end of JPEG file')


class BadImage(Exception):
    """An image file that cannot be used; ``str(err)`` is a short reason for skipped.tsv."""


def is_image_file(name):
    """Whether ``name`` has an image extension (any letter case)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def scan_class_folders(root):
    """List the images under ``root/<class>/`` (any depth below the class folder).

    Parameters
    ----------
    root : str
        Folder whose sub-folders are the classes; files directly in ``root`` are ignored.

    Returns
    -------
    classes : list of str
        Sorted class folder names; label ``i`` is ``classes[i]``.
    items : list of (str, int)
        ``(relative/path, label)`` with ``/`` separators, sorted by class then path.
        Non-image files and hidden files are left out; what cannot be read as an image (a
        FIFO named ``x.jpg``, a path with a tab) is listed, for the reader to skip with its
        reason.

    Raises
    ------
    UserError
        A class folder name that cannot be a class name (a tab, a line break).
    """
    classes = sorted(d for d in os.listdir(root)
                     if not d.startswith('.') and os.path.isdir(os.path.join(root, d)))
    check_names(classes, f'the class folders of {root}')
    items = []
    for label, name in enumerate(classes):
        found = []
        for rel, files in walk_files(os.path.join(root, name)):
            prefix = f'{name}/{rel}/'.replace(os.sep, '/') if rel else f'{name}/'
            found.extend(prefix + f for f in files if is_image_file(f))
        items.extend((path, label) for path in sorted(found))
    return classes, items


def _exif_orientation(tiff):
    """Orientation tag (1..8) from an EXIF TIFF block; 1 when absent or unreadable."""
    if len(tiff) < 8 or tiff[:2] not in (b'II', b'MM'):
        return 1
    end = '<' if tiff[:2] == b'II' else '>'
    ifd = struct.unpack(end + 'I', tiff[4:8])[0]
    if ifd + 2 > len(tiff):
        return 1
    count = struct.unpack(end + 'H', tiff[ifd:ifd + 2])[0]
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(tiff):
            break
        if struct.unpack(end + 'H', tiff[entry:entry + 2])[0] == 0x0112:
            value = struct.unpack(end + 'H', tiff[entry + 8:entry + 10])[0]
            return value if 1 <= value <= 8 else 1
    return 1


def jpeg_info(data):
    """Parse JPEG headers without decoding.

    Returns
    -------
    dict or None
        None if ``data`` is not a JPEG; else ``height, width, components, orientation``
        (from the header, before rotation) and ``complete`` (an end-of-image marker follows
        the first scan; entropy-coded data cannot contain that marker, so its absence means
        the file was cut).
    """
    if data[:2] != b'\xff\xd8':
        return None
    info = {'height': 0, 'width': 0, 'components': 0, 'orientation': 1, 'complete': False}
    pos, size = 2, len(data)
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            return info
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            pos += 2
            continue
        length = struct.unpack('>H', data[pos + 2:pos + 4])[0]
        if marker == 0xDA:
            scan = pos + 2 + length  # the usual case, EOI at the very end, is checked first
            info['complete'] = (data.rfind(b'\xff\xd9', max(scan, size - 64)) >= 0
                                or data.find(b'\xff\xd9', scan) >= 0)
            return info
        if marker in _SOF_MARKERS and pos + 10 <= size:
            info['height'], info['width'] = struct.unpack('>HH', data[pos + 5:pos + 9])
            info['components'] = data[pos + 9]
        elif marker == 0xE1 and data[pos + 4:pos + 10] == b'Exif\x00\x00':
            info['orientation'] = _exif_orientation(data[pos + 10:pos + 2 + length])
        pos += 2 + length
    return info


def image_size(data, info=None):
    """``(width, height)`` from the headers alone (JPEG SOF, PNG IHDR, else PIL's lazy open,
    which reads no pixels); None when the format is not recognised. ``info``: the
    :func:`jpeg_info` of ``data`` when the caller has parsed it already."""
    info = jpeg_info(data) if info is None else info
    if info is not None:
        return (info['width'], info['height']) if info['width'] else None
    if data[:8] == b'\x89PNG\r\n\x1a\n' and data[12:16] == b'IHDR' and len(data) >= 24:
        return struct.unpack('>II', data[16:24])
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Image.DecompressionBombError:
        return (2 * MAX_PIXELS + 1, 1)             # PIL refused it: larger than twice its limit
    except Exception:  # noqa: BLE001 - unknown to PIL: OpenCV gets its chance
        return None


def _check_pixels(data, max_pixels, info=None):
    size = image_size(data, info)
    if max_pixels and size is not None and size[0] * size[1] > max_pixels:
        raise BadImage(f'too large: {size[0]}x{size[1]} pixels, above the limit of '
                       f'{max_pixels} (--max-pixels)')


_CAPTURE = {'pid': None, 'fd': None, 'lock': threading.Lock()}


def _capture_fd():
    """An in-memory file for this process (a forked child makes its own)."""
    if _CAPTURE['pid'] != os.getpid():
        try:
            _CAPTURE['fd'] = os.memfd_create('decoder-messages', os.MFD_CLOEXEC)
        except (AttributeError, OSError):           # not Linux: an unlinked temporary file
            import tempfile
            with tempfile.TemporaryFile() as ftmp:
                _CAPTURE['fd'] = os.dup(ftmp.fileno())
        _CAPTURE['pid'] = os.getpid()
    return _CAPTURE['fd']


def _imdecode_checked(buf, flag):
    """``cv2.imdecode`` that raises BadImage where libjpeg reported damaged data.

    No OpenCV or libjpeg API exposes those warnings; libjpeg prints them on stderr. So file
    descriptor 2 points at an in-memory file for the duration of the call, and what was
    printed is read back: a damage message becomes the BadImage reason, anything else
    (another thread's output) is forwarded to the real stderr.
    """
    with _CAPTURE['lock']:
        fd = _capture_fd()
        saved = os.dup(2)
        os.dup2(fd, 2)
        try:
            img = cv2.imdecode(buf, flag)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        size = os.fstat(fd).st_size
        printed = os.pread(fd, size, 0) if size else b''
        if size:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
    lines = printed.splitlines(keepends=True)
    damage = [ln for ln in lines if ln.startswith(_JPEG_DAMAGE)]
    other = b''.join(ln for ln in lines if not ln.startswith(_JPEG_DAMAGE))
    if other:
        os.write(2, other)
    if damage:
        raise BadImage(f'corrupt JPEG ({damage[0].decode(errors="replace").strip()})')
    return img


# The decode policy, one for every image mode (the module doc of decode_image): what is
# refused, and the smallest and most elongated image admitted.
MIN_SIDE = 8
MAX_ASPECT = 64
_REFUSED_MODES = {
    'F': 'its samples are 32-bit floats, which have no exact 8-bit reading',
    'I;16S': 'its samples are signed 16-bit integers, which have no exact 8-bit reading',
    'I;32S': 'its samples are signed 32-bit integers, which have no exact 8-bit reading',
}
_SIXTEEN_BIT = ('I;16', 'I;16L', 'I;16B', 'I;16N')


def _on_white(rgba):
    """RGB uint8 of an RGBA uint8 array, composited on white: ``rgb * a + 255 * (1 - a)``."""
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    rgb = rgba[:, :, :3].astype(np.float32)
    return (rgb * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)


def _pil_rgb(im):
    """RGB uint8 of a PIL image by the policy (see :func:`decode_image`)."""
    from PIL import ImageOps
    im = ImageOps.exif_transpose(im)
    mode = im.mode
    if mode in _REFUSED_MODES or (mode in ('I', 'I;32') and im.format != 'PNG'):
        raise BadImage(_REFUSED_MODES.get(mode, 'its samples are signed or wider than 16 bits, '
                                          'which have no exact 8-bit reading'))
    if mode in _SIXTEEN_BIT or mode in ('I', 'I;32'):       # 16-bit grey (PNG loads as 'I')
        grey = np.asarray(im).astype(np.uint32)
        if grey.max(initial=0) > 65535:
            raise BadImage('its samples exceed 16 bits, which have no exact 8-bit reading')
        return np.repeat((grey >> 8).astype(np.uint8)[:, :, None], 3, axis=2)
    if 'A' in mode or 'transparency' in im.info:
        return _on_white(np.asarray(im.convert('RGBA')))
    return np.asarray(im.convert('RGB'))


def _decode_with_pil(data):
    """RGB uint8 of a non-JPEG file, decoded by PIL, the reference decoder of every format."""
    from PIL import Image, ImageFile
    # Importing gluoncv.data turns this on for the whole process (gluoncv/data/mhp.py): PIL
    # would then decode a cut-off file silently. Truncated files are refused here.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return _pil_rgb(im)
    except BadImage:
        raise
    except Exception as err:  # noqa: BLE001 - any decoder failure means "not readable"
        raise BadImage(f'not a decodable image ({type(err).__name__})') from None


def _check_shape(img, height=None, width=None):
    """``img``, refused when its full size (``height`` x ``width`` when a reduced decode made
    ``img`` smaller) is too small or too elongated."""
    if height is None:
        height, width = img.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise BadImage(f'too small: {width}x{height} pixels (at least {MIN_SIDE} on each side)')
    if max(height, width) > MAX_ASPECT * min(height, width):
        raise BadImage(f'too elongated: {width}x{height} pixels (sides differ by more than '
                       f'{MAX_ASPECT}x)')
    return img


def decode_image(data, min_side=0, max_pixels=MAX_PIXELS, damage_warnings=True):
    """Decode image bytes into an upright uint8 BGR array of shape (H, W, 3).

    One policy for every image mode, checked against PIL on real files: upright by its EXIF
    orientation; grey becomes three equal channels; 16-bit samples keep their high byte;
    anything transparent (RGBA, grey + alpha, a palette or a grey / RGB image with a
    transparent colour) is composited on white; CMYK and other colour spaces are converted as
    PIL converts them. Refused, with the reason: float and signed samples (no exact 8-bit
    reading), images under :data:`MIN_SIDE` pixels on a side or more elongated than
    :data:`MAX_ASPECT`, truncated or damaged files. JPEGs are decoded by OpenCV (libjpeg,
    with reduced-size decoding), everything else by PIL.

    Parameters
    ----------
    data : bytes
        The whole file.
    min_side : int
        If > 0 and the file is a JPEG, decode at the smallest 1/2, 1/4 or 1/8 scale whose
        shorter side is still >= ``min_side``.
    max_pixels : int
        Refuse, before decoding, an image whose headers declare more pixels (0: no limit).
        The default is PIL's decompression-bomb limit, about 89.5 million.
    damage_warnings : bool
        Refuse a JPEG for which libjpeg reports damaged data ("Corrupt JPEG data: ...",
        "Premature end of JPEG file") instead of returning what it could decode.

    Raises
    ------
    BadImage
        Empty, too large, too small, truncated, corrupt (any libjpeg damage warning),
        undecodable, or of a mode the policy refuses.
    """
    if not data:
        raise BadImage('empty file')
    info = jpeg_info(data)
    _check_pixels(data, max_pixels, info)
    if info is None:
        if data[:8] == b'\x89PNG\r\n\x1a\n' and b'IEND' not in data[-64:]:
            raise BadImage('truncated PNG (no IEND chunk)')
        rgb = _check_shape(_decode_with_pil(data))
        return np.ascontiguousarray(rgb[:, :, ::-1])
    if not info['complete']:
        raise BadImage('truncated JPEG (no end-of-image marker)')
    flag = cv2.IMREAD_COLOR
    shorter = min(info['height'], info['width'])
    for factor, reduced in _REDUCED:
        if min_side and shorter and -(-shorter // factor) >= min_side:
            flag = reduced
            break
    buf = np.frombuffer(data, np.uint8)
    img = _imdecode_checked(buf, flag) if damage_warnings else cv2.imdecode(buf, flag)
    if img is None or img.size == 0:
        raise BadImage('not a decodable image')
    return _check_shape(img, info['height'] or None, info['width'] or None)


def resize_shorter(img, size):
    """Resize so the shorter side is exactly ``size`` (aspect kept, long side rounded; small
    images are enlarged, as MXNet's im2rec does)."""
    height, width = img.shape[:2]
    if min(height, width) == size:
        return img
    scale = size / min(height, width)
    new_h = size if height <= width else max(1, int(round(height * scale)))
    new_w = size if width < height else max(1, int(round(width * scale)))
    # Area averaging only where bilinear would alias (after reduced JPEG decoding the
    # remaining factor is usually < 2); bilinear upscaling, as MXNet's and GluonCV's files.
    interp = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
    return cv2.resize(img, (new_w, new_h), interpolation=interp)


def center_square(img):
    """The largest centred square of ``img``."""
    height, width = img.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return img[top:top + side, left:left + side]
