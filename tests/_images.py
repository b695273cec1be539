"""Real-photo test images with every awkward case a collection has, built in a temp folder.

The photos are scikit-learn's two sample images (china.jpg, flower.jpg, 427x640). Each good
image is recorded with its expected label and its expected upright shape, so a test can check
the packed records against them.
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image


def photos():
    """The two sample photos as RGB uint8 arrays."""
    from sklearn.datasets import load_sample_images
    return [np.asarray(img) for img in load_sample_images().images]


def _save(path, image, fmt, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, fmt, **kw)


def _exif(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def make_awkward_tree(root):
    """Write ``root/<class>/...`` with good and bad images.

    Returns
    -------
    good : dict
        ``relative path -> (label, (upright height, upright width))``
    bad : list of str
        Relative paths that must be skipped.
    """
    china, flower = photos()
    good, bad = {}, []

    def put(rel, label, image, fmt, upright_hw, **kw):
        _save(os.path.join(root, rel), image, fmt, **kw)
        good[rel] = (label, upright_hw)

    c_img, f_img = Image.fromarray(china), Image.fromarray(flower)
    # class 0: "alpha" (sorted first), 1: "bétula tree", 2: "zebra"
    put('alpha/plain.jpg', 0, c_img, 'JPEG', (427, 640), quality=90)
    put('alpha/GREY.JPG', 0, f_img.convert('L'), 'JPEG', (427, 640))
    put('alpha/rgba.png', 0, f_img.convert('RGBA'), 'PNG', (427, 640))
    put('alpha/cmyk.jpeg', 0, c_img.convert('CMYK'), 'JPEG', (427, 640))
    put('alpha/sub dir/rotated 90.jpg', 0, c_img, 'JPEG', (640, 427), exif=_exif(6))
    put('bétula tree/fleur été.png', 1, f_img, 'PNG', (427, 640))
    put('bétula tree/mirrored.jpg', 1, f_img, 'JPEG', (427, 640), exif=_exif(2))
    put('bétula tree/tiny.jpg', 1, c_img.resize((12, 9)), 'JPEG', (9, 12))
    put('zebra/large.jpg', 2, c_img.resize((2560, 1708)), 'JPEG', (1708, 2560), quality=85)
    put('zebra/rotated270.JPEG', 2, f_img, 'JPEG', (640, 427), exif=_exif(8))
    put('zebra/bitmap.bmp', 2, f_img.resize((200, 150)), 'BMP', (150, 200))
    # not images: ignored without a word
    with open(os.path.join(root, 'zebra', 'notes.txt'), 'w') as fout:
        fout.write('not an image')
    with open(os.path.join(root, 'README'), 'w') as fout:
        fout.write('top-level files are not a class')
    # bad images
    buf = io.BytesIO()
    c_img.save(buf, 'JPEG')
    with open(os.path.join(root, 'zebra', 'truncated.jpg'), 'wb') as fout:
        fout.write(buf.getvalue()[:len(buf.getvalue()) // 2])
    open(os.path.join(root, 'zebra', 'empty.jpg'), 'wb').close()
    with open(os.path.join(root, 'alpha', 'garbage.png'), 'wb') as fout:
        fout.write(b'this is not a png at all' * 10)
    buf = io.BytesIO()
    f_img.save(buf, 'PNG')
    with open(os.path.join(root, 'alpha', 'cut.png'), 'wb') as fout:
        fout.write(buf.getvalue()[:-5000])
    bad = ['zebra/truncated.jpg', 'zebra/empty.jpg', 'alpha/garbage.png', 'alpha/cut.png']
    return good, bad


def make_class_tree(root, classes=3, per_class=4, size=(48, 64), seed=0):
    """Small real-photo crops in ``root/c<k>/img<i>.jpg``; returns the number of images."""
    rng = np.random.RandomState(seed)
    china, flower = photos()
    count = 0
    for k in range(classes):
        for i in range(per_class):
            src = (china, flower)[(k + i) % 2]
            top, left = rng.randint(0, 427 - size[0]), rng.randint(0, 640 - size[1])
            crop = src[top:top + size[0], left:left + size[1]]
            _save(os.path.join(root, f'c{k}', f'img{i}.jpg'), Image.fromarray(crop), 'JPEG',
                  quality=95)
            count += 1
    return count


def jpeg_bytes(rgb, quality=90):
    """``rgb`` (uint8 array) encoded as JPEG by PIL."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, 'JPEG', quality=quality)
    return buf.getvalue()


def with_declared_size(jpeg, width, height):
    """``jpeg`` with its frame header (SOF0) claiming ``width`` x ``height``: the scan data is
    then far too short for the frame, as in a file whose data was cut and re-terminated."""
    pos = jpeg.find(b'\xff\xc0')
    assert pos > 0, 'baseline JPEG expected'
    return jpeg[:pos + 5] + struct.pack('>HH', height, width) + jpeg[pos + 9:]


def with_flipped_bytes(data, start, count=40):
    """``data`` with ``count`` bytes from ``start`` XOR-ed (a bit-rot / bad-sector stand-in)."""
    out = bytearray(data)
    for i in range(start, start + count):
        out[i] ^= 0x5A
    return bytes(out)


def png_bomb(width, height):
    """A valid 1-bit grey PNG of ``width`` x ``height`` zeros: a few KB on disk, ``3 * width *
    height`` bytes once decoded to BGR (the decompression bomb PIL's limit guards against)."""
    def chunk(kind, body):
        return (struct.pack('>I', len(body)) + kind + body
                + struct.pack('>I', zlib.crc32(kind + body) & 0xFFFFFFFF))
    row = b'\x00' * (1 + (width + 7) // 8)           # filter byte 0 + packed bits
    packer = zlib.compressobj(9)
    idat = b''.join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack('>IIBBBBB', width, height, 1, 0, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', idat)
            + chunk(b'IEND', b''))


def skimage_photo(name, height, width):
    """The scikit-image photo ``name`` (``skimage.data``) resized with PIL bilinear to
    ``height`` x ``width``, RGB uint8; the test is skipped without scikit-image."""
    import pytest
    skdata = pytest.importorskip("skimage.data")
    return np.asarray(Image.fromarray(getattr(skdata, name)()).resize((width, height),
                                                                       Image.BILINEAR))


def make_hostile_tree(root):
    """``root/c0/`` with one good photo and four files that must not be packed (a header
    declaring 900 Mpx, a PNG decompression bomb, scan data far shorter than its frame, bit
    rot inside the scan); returns ``root``."""
    china = photos()[0]
    photo = jpeg_bytes(china)
    files = {
        'good.jpg': jpeg_bytes(china[:120, :160]),
        'huge_truncated.jpg': with_declared_size(photo, 30000, 30000),
        'bomb.png': png_bomb(10000, 10000),
        'short_data.jpg': with_declared_size(photo, 2000, 2000),
        'flipped.jpg': with_flipped_bytes(photo, len(photo) // 3),
    }
    os.makedirs(os.path.join(root, 'c0'))
    for name, data in files.items():
        with open(os.path.join(root, 'c0', name), 'wb') as fout:
            fout.write(data)
    return root
