"""Property-based attacks (hypothesis) on two of the four invariants, each through its one home:
only exactly readable input is admitted (``data/folder.py`` ``decode_image`` and
``plan_image_folder``, ``utils/files.py``, the pack-open label check of ``data/validate.py``)
and a checkpoint is what it claims (``checkpoint.py``). The other two, outputs and processes,
are attacked in test_invariants_fuzz_outputs.py. Profiles (tests/conftest.py): ``ci`` by
default, ``HYPOTHESIS_PROFILE=nightly`` for many examples.

Expected values: PIL decodes every image file (with the policy of ``decode_image``'s docstring
written out by hand here: upright, grey to three channels, 16-bit to the high byte, transparent
composited on white by PIL's own ``alpha_composite``); MXNet's own ``recordio`` writes the
packs whose labels are checked; the bytes and record the test itself wrote are what a
checkpoint must read back as."""
import io
import json
import os
import tempfile

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps

from _fuzz import crop, encode, image_files, one_sentence, pil_image
from resnest.gluon.data.folder import MAX_ASPECT, MIN_SIDE, BadImage, decode_image

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::UserWarning")]


def pil_reference(data):
    """``(kind, rgb)``: ``('rgb', array)`` as PIL reads ``data`` under the policy, ``('refuse',
    None)`` for samples the policy refuses (float, signed), ``('unreadable', None)`` when PIL
    cannot read the bytes."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("F", "I;16S", "I;32S"):
                return "refuse", None
            if im.mode.startswith("I"):                     # 16-bit grey: the high byte
                high = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
                return "rgb", np.repeat(high[:, :, None], 3, axis=2)
            if "A" in im.mode or "transparency" in im.info:
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                return "rgb", np.asarray(Image.alpha_composite(white, im.convert("RGBA"))
                                         .convert("RGB"))
            return "rgb", np.asarray(im.convert("RGB"))
    except Exception:  # noqa: BLE001 - whatever PIL cannot read
        return "unreadable", None


def _admissible_shape(height, width):
    """The shape rule of decode_image's docstring, written out."""
    return min(height, width) >= MIN_SIDE and max(height, width) <= MAX_ASPECT * min(height,
                                                                                     width)


@given(image_files())
@settings(max_examples=settings.default.max_examples * 3)
def test_decode_image_gives_pils_pixels_or_a_reason(case):
    desc, data = case
    kind, ref = pil_reference(data)
    try:
        bgr = decode_image(data)
    except BadImage as err:
        assert one_sentence(err), desc
        if kind == "rgb" and desc.endswith(" none") and _admissible_shape(*ref.shape[:2]):
            pytest.fail(f"{desc}: an intact, admissible image was refused ({err})")
        return
    assert kind == "rgb", f"{desc}: decoded what PIL reads as {kind}"
    rgb = bgr[:, :, ::-1]
    assert rgb.shape == ref.shape, desc
    diff = np.abs(rgb.astype(int) - ref.astype(int))
    if desc.split()[1] == "JPEG":      # OpenCV's libjpeg against PIL's: IDCT and CMYK rounding
        assert diff.mean() <= 1.5 and diff.max() <= 8, (desc, diff.mean(), diff.max())
    else:                              # alpha compositing may round the other way
        assert diff.max() <= 1, (desc, diff.max())
