"""One decode policy for every image mode (:func:`resnest.gluon.data.folder.decode_image`),
checked against PIL on real photos saved in each mode: transparency of every kind on white
(computed by PIL's own ``alpha_composite``), 16-bit samples by their high byte, and the modes
that have no exact 8-bit reading refused with their reason, as are images too small to use;
class folders with names that cannot be listed are refused; a truncated or damaged JPEG is
refused, and libjpeg's warnings are read without swallowing anyone else's stderr."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from _images import jpeg_bytes, photos, with_flipped_bytes
from resnest.gluon.data.folder import BadImage, decode_image, jpeg_info, scan_class_folders
from resnest.gluon.utils.errors import UserError


@pytest.fixture(scope="module")
def photo():
    return photos()[0][100:164, 200:280]                  # 64x80 of china.jpg, RGB


def _bytes(im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _rgb(data):
    return decode_image(data)[:, :, ::-1]                 # ours is BGR


def _on_white_by_pil(im):
    rgba = im.convert("RGBA")
    return np.asarray(Image.alpha_composite(Image.new("RGBA", rgba.size, "white"),
                                            rgba).convert("RGB")).astype(int)


def _transparent_modes(photo):
    rgb = Image.fromarray(photo)
    alpha = Image.fromarray(np.tile(np.linspace(0, 255, photo.shape[1]).astype(np.uint8),
                                    (photo.shape[0], 1)))
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    la = rgb.convert("L")
    la.putalpha(alpha)
    palette = rgb.convert("P", palette=Image.ADAPTIVE, colors=64)
    palette.info["transparency"] = int(np.asarray(palette)[0, 0])     # one colour see-through
    grey_trns = rgb.convert("L")
    grey_trns.info["transparency"] = int(np.asarray(grey_trns)[5, 5])
    return {"RGBA png": (rgba, "PNG"), "LA png": (la, "PNG"), "P+tRNS png": (palette, "PNG"),
            "L+tRNS png": (grey_trns, "PNG"), "RGBA webp": (rgba, "WEBP"),
            "RGBA tiff": (rgba, "TIFF"), "P+tRNS gif": (palette, "GIF")}


@pytest.mark.parametrize("name", ["RGBA png", "LA png", "P+tRNS png", "L+tRNS png",
                                  "RGBA webp", "RGBA tiff", "P+tRNS gif"])
def test_every_kind_of_transparency_comes_out_on_white(photo, name):
    im, fmt = _transparent_modes(photo)[name]
    kw = {"lossless": True} if fmt == "WEBP" else {}
    if fmt == "GIF":
        kw["transparency"] = im.info["transparency"]
    data = _bytes(im, fmt, **kw)
    with Image.open(io.BytesIO(data)) as reread:          # what the file holds, per PIL
        want = _on_white_by_pil(reread)
    got = _rgb(data).astype(int)
    assert got.shape == want.shape and np.abs(got - want).max() <= 1, name
    if "tRNS" in name or name.startswith("P"):
        assert (got == 255).all(axis=2).any()             # the see-through colour is white


def test_opaque_modes_read_as_pil_reads_them(photo):
    rgb = Image.fromarray(photo)
    for im, fmt in ((rgb, "PNG"), (rgb.convert("L"), "PNG"), (rgb, "BMP"), (rgb, "TIFF"),
                    (rgb.convert("CMYK"), "TIFF"), (rgb.convert("1"), "PNG")):
        data = _bytes(im, fmt)
        with Image.open(io.BytesIO(data)) as reread:
            want = np.asarray(reread.convert("RGB"))
        assert np.array_equal(_rgb(data), want), (im.mode, fmt)


def test_sixteen_bit_samples_keep_their_high_byte(photo):
    grey16 = (np.asarray(Image.fromarray(photo).convert("L")).astype(np.uint16) * 257 + 7)
    data = _bytes(Image.fromarray(grey16), "PNG")        # PIL writes a 16-bit grey PNG
    with Image.open(io.BytesIO(data)) as reread:
        samples = np.asarray(reread).astype(np.uint32)
    assert samples.max() > 255                            # really 16-bit in the file
    want = np.repeat((samples >> 8).astype(np.uint8)[:, :, None], 3, axis=2)
    assert np.array_equal(_rgb(data), want)


@pytest.mark.parametrize("mode, dtype, words", [
    ("F", np.float32, "32-bit floats"),
    ("I;16S", np.int16, "signed"),
    ("I", np.int32, "wider than 16 bits"),
])
def test_modes_without_an_exact_8_bit_reading_are_refused(photo, mode, dtype, words):
    values = np.asarray(Image.fromarray(photo).convert("L")).astype(dtype)
    if dtype == np.float32:
        values = values / 255.0                           # a float TIFF of 0..1 would be black
    data = _bytes(Image.fromarray(values), "TIFF")
    with pytest.raises(BadImage, match=words):
        decode_image(data)


def test_images_too_small_or_too_elongated_are_refused(photo):
    for size, words in (((300, 1), "too small: 300x1"), ((4, 4), "too small: 4x4"),
                        ((1000, 10), "too elongated")):
        data = _bytes(Image.new("RGB", size, "red"), "PNG")
        with pytest.raises(BadImage, match=words):
            decode_image(data)
    jpeg = _bytes(Image.new("RGB", (300, 1), "red"), "JPEG")
    with pytest.raises(BadImage, match="too small"):
        decode_image(jpeg)


def test_class_folders_whose_names_cannot_be_listed_are_refused(tmp_path):
    (tmp_path / "cat\tdog").mkdir()
    (tmp_path / "bird").mkdir()
    with pytest.raises(UserError, match=r"'cat\\tdog', cannot be a class name: it holds a tab"):
        scan_class_folders(str(tmp_path))


def test_truncated_jpeg_detected_and_reduced_decode_keeps_size():
    from io import BytesIO
    from PIL import Image
    buf = BytesIO()
    Image.fromarray(np.zeros((400, 600, 3), np.uint8)).save(buf, 'JPEG')
    data = buf.getvalue()
    assert jpeg_info(data)['complete'] and jpeg_info(data)['height'] == 400
    with pytest.raises(BadImage):
        decode_image(data[:-100])
    assert decode_image(data, min_side=100).shape[:2] == (100, 150)  # 1/4 scale suffices
    assert decode_image(data, min_side=101).shape[:2] == (200, 300)


def test_decode_warning_capture_keeps_other_stderr_output(capfd):
    from resnest.gluon.data import folder
    photo = jpeg_bytes(photos()[1])
    with pytest.raises(BadImage, match='Corrupt JPEG data'):
        decode_image(with_flipped_bytes(photo, len(photo) // 2))
    assert decode_image(photo).shape == (427, 640, 3)
    original = folder.cv2.imdecode

    def chatty(buf, flag):                          # another thread printing meanwhile
        os.write(2, b'unrelated message\n')
        return original(buf, flag)
    folder.cv2.imdecode = chatty
    try:
        decode_image(photo)
    finally:
        folder.cv2.imdecode = original
    assert capfd.readouterr().err == 'unrelated message\n'
