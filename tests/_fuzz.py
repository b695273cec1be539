"""Shared pieces of the property-based attacks on the four invariants
(tests/test_invariants_*.py): real photo pixels, the image files hypothesis draws, a hash of a
whole folder tree (to show that a refusal changed nothing), and the one-sentence check."""
import functools
import hashlib
import io
import os
import stat

import numpy as np
from PIL import Image

from hypothesis import strategies as st

PHOTOS = ("astronaut", "coffee", "chelsea", "camera")


@functools.lru_cache(maxsize=None)
def photo(name):
    """scikit-image's photo ``name`` as an RGB uint8 array (grey photos repeated to RGB)."""
    import pytest
    skdata = pytest.importorskip("skimage.data")
    img = np.asarray(getattr(skdata, name)())
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img[:, :, :3]


def crop(name, top, left, height, width):
    """A ``height`` x ``width`` crop of the photo (wrapping so any offset is inside)."""
    img = photo(name)
    rows = (np.arange(height) + top) % img.shape[0]
    cols = (np.arange(width) + left) % img.shape[1]
    return np.ascontiguousarray(img[rows][:, cols])


# (PIL mode, the formats that can store it)
MODES = {
    "RGB": ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "PPM"),
    "L": ("PNG", "JPEG", "BMP", "TIFF", "PPM"),
    "RGBA": ("PNG", "TIFF", "WEBP"),
    "LA": ("PNG",),
    "P": ("PNG", "GIF", "BMP"),
    "P+transparency": ("PNG", "GIF"),
    "CMYK": ("JPEG", "TIFF"),
    "I;16": ("PNG", "TIFF"),
    "F": ("TIFF",),
}


def pil_image(rgb, mode, seed):
    """A PIL image of ``mode`` made from the RGB pixels (alpha, 16-bit and float samples from
    the pixels too, so every channel is a real picture)."""
    im = Image.fromarray(rgb)
    grey = np.asarray(im.convert("L"))
    if mode == "RGBA":
        alpha = ((grey.astype(np.int32) * 7 + seed) % 256).astype(np.uint8)
        return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    if mode == "LA":
        return im.convert("LA")
    if mode in ("P", "P+transparency"):
        pal = im.quantize(colors=16)
        if mode == "P+transparency":
            pal.info["transparency"] = seed % 16
        return pal
    if mode == "I;16":
        wide = grey.astype(np.uint16) * 257 + (seed % 257)
        return Image.fromarray(wide.astype(np.uint16))
    if mode == "F":
        return Image.fromarray(grey.astype(np.float32) / 255.0)
    return im.convert(mode)


def encode(im, fmt, seed):
    """The bytes of ``im`` saved as ``fmt`` by PIL."""
    buf = io.BytesIO()
    kw = {"quality": 60 + seed % 40} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "PNG" and "transparency" in im.info:
        kw["transparency"] = im.info["transparency"]
    if fmt == "GIF" and "transparency" in im.info:
        kw["transparency"] = im.info["transparency"]
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@st.composite
def image_files(draw, max_side=48):
    """``(description, bytes)`` of a real image file of any mode, format and shape (1xN,
    elongated, tiny included), maybe truncated or with flipped bytes."""
    mode = draw(st.sampled_from(sorted(MODES)))
    fmt = draw(st.sampled_from(MODES[mode]))
    height = draw(st.integers(1, max_side))
    width = draw(st.one_of(st.integers(1, max_side), st.integers(65 * height, 65 * height + 3)
                           .filter(lambda w: w <= 600)))
    seed = draw(st.integers(0, 255))
    rgb = crop(draw(st.sampled_from(PHOTOS)), draw(st.integers(0, 511)),
               draw(st.integers(0, 511)), height, width)
    data = encode(pil_image(rgb, mode, seed), fmt, seed)
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    if damage == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif damage == "flip":
        data = bytearray(data)
        for pos in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=4)):
            data[pos] ^= draw(st.integers(1, 255))
        data = bytes(data)
    return f"{mode} {fmt} {width}x{height} {damage}", data


def tree_state(root, ignore=()):
    """Everything under ``root``: each path's kind, the bytes of regular files, the target of
    links; equal before and after means nothing changed. Regular files named in ``ignore``
    (a lock file a lock takes over) are left out."""
    digest = hashlib.sha1()
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(folder, name)
            if name in ignore and stat.S_ISREG(os.lstat(path).st_mode):
                continue
            mode = os.lstat(path).st_mode
            digest.update(f"{path}\0{stat.S_IFMT(mode)}\0".encode())
            if stat.S_ISLNK(mode):
                digest.update(os.readlink(path).encode())
            elif stat.S_ISREG(mode):
                with open(path, "rb") as f:
                    digest.update(f.read())
    return digest.hexdigest()


def one_sentence(err):
    """Whether an error message is one sentence a user can read: one line, no traceback."""
    text = str(err)
    return bool(text) and "\n" not in text and "Traceback" not in text
