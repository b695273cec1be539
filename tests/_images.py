"""Real-photo test images with every awkward case a collection has, built in a temp folder.

The photos are scikit-learn's two sample images (china.jpg, flower.jpg, 427x640). Each good
image is recorded with its expected label and its expected upright shape, so a test can check
the packed records against them.
"""
import io
import os

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
