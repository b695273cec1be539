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
from resnest.gluon.data.folder import (MAX_ASPECT, MIN_SIDE, BadImage, decode_image,
                                      is_image_file)

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


# -- trees of odd things, through plan_image_folder, walk_files, read_regular, encode_entry --

NAME = st.text(st.sampled_from("ab Z\u00e9\t\n.-_"), min_size=1, max_size=4).filter(
    lambda n: n not in (".", ".."))
KINDS = ("image", "image", "image", "empty", "fifo", "folder.jpg", "link", "dangling", "loop",
         "text.png")


@st.composite
def odd_trees(draw):
    """``[(class, relative parts, kind, image bytes or None)]``: what to build in a tree."""
    items = []
    for _ in range(draw(st.integers(1, 6))):
        cls = draw(NAME)
        parts = draw(st.lists(NAME, min_size=0, max_size=2))
        ext = draw(st.sampled_from([".jpg", ".PNG", ".tif", ".gif", ".txt", ".webp"]))
        kind = draw(st.sampled_from(KINDS))
        data = draw(image_files(max_side=24))[1] if kind in ("image", "link") else None
        items.append((cls, parts + [draw(NAME) + ext], kind, data))
    return items


def _build(root, items):
    """Make the tree; returns ``{relative path: bytes}`` of the regular image files and links
    to them as written (what a reader may admit), and the relative paths of every file-like
    thing made (what a lister must list when its name says image)."""
    written, made = {}, []
    for cls, parts, kind, data in items:
        rel = os.path.join(cls, *parts)
        path = os.path.join(root, rel)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.lexists(path):
                continue
            if kind in ("image", "link"):
                target = path if kind == "image" else os.path.join(root, f".t{len(written)}")
                with open(target, "wb") as f:
                    f.write(data)
                if kind == "link":
                    os.symlink(target, path)
                written[rel.replace(os.sep, "/")] = data
            elif kind == "empty":
                open(path, "wb").close()
            elif kind == "fifo":
                os.mkfifo(path)
            elif kind == "folder.jpg":
                os.makedirs(path)
            elif kind == "dangling":
                os.symlink(os.path.join(root, "nowhere"), path)
            elif kind == "loop":
                os.symlink(os.path.dirname(path), path)
            else:
                with open(path, "w") as f:
                    f.write("not an image\n")
            if kind != "folder.jpg":
                made.append(rel.replace(os.sep, "/"))
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            continue                  # an earlier item took the name as a file or a folder
    return written, made


@given(odd_trees())
@example([("a", ["x.jpg"], "fifo", None), ("a", ["y.png"], "loop", None),
          ("a\tb", ["z.jpg"], "empty", None)])
def test_odd_trees_are_packed_exactly_or_skipped_with_a_reason(tmp_path, items):
    import cv2
    from resnest.gluon.data.pack import PackOptions, encode_entry, plan_image_folder
    from resnest.gluon.data.recordio import read_record, unpack_payload
    from resnest.gluon.utils.errors import UserError
    root = tempfile.mkdtemp(dir=tmp_path)
    written, made = _build(root, items)
    visible = {p for p in made if is_image_file(p)
               and not any(part.startswith(".") for part in p.split("/"))}
    try:
        entries, classes = plan_image_folder(root)
    except UserError as err:
        assert one_sentence(err)
        bad = [c for c, *_ in items if "\t" in c or "\n" in c or c != c.strip()]
        assert bad or not visible, f"refused a tree with images and good class names: {err}"
        return
    assert {e.path for e in entries} == visible
    for entry in entries:
        record, reason = encode_entry(root, entry, PackOptions(encoding=".png"))
        if record is None:
            assert isinstance(reason, str) and reason and "\n" not in reason, (entry, reason)
            continue
        assert entry.path in written, f"{entry.path!r} was packed, but it is no image file"
        kind, ref = pil_reference(written[entry.path])
        assert kind == "rgb", f"{entry.path!r} was packed, PIL reads it as {kind}"
        payload, _ = read_record(io.BytesIO(record), 0)
        labels, _, png = unpack_payload(payload)
        assert labels == (float(entry.labels[0]),) and classes[int(labels[0])] == \
            entry.path.split("/")[0]
        rgb = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        diff = np.abs(rgb.astype(int) - ref.astype(int))
        assert rgb.shape == ref.shape and diff.mean() <= 1.5 and diff.max() <= 8, entry.path


# -- labels of a .rec (written by MXNet's own recordio) against its class list --

LABELS = st.one_of(st.integers(-3, 12).map(float), st.sampled_from(
    [float("nan"), float("inf"), -float("inf"), 0.5, 2.25, -0.0, 1e9, 3.4e38]))


@given(st.lists(LABELS, min_size=1, max_size=8), st.one_of(st.none(), st.integers(1, 10)))
@example([1e9], None)
def test_rec_labels_outside_the_classes_are_refused_when_opened(tmp_path, labels, classes):
    import mxnet as mx
    from resnest.gluon.data.validate import checked_index
    from resnest.gluon.utils.errors import UserError
    prefix = os.path.join(tempfile.mkdtemp(dir=tmp_path), "p")
    rec = mx.recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "w")
    jpeg = encode(pil_image(crop("coffee", 0, 0, 8, 8), "RGB", 0), "JPEG", 0)
    for key, label in enumerate(labels):
        rec.write_idx(key, mx.recordio.pack(mx.recordio.IRHeader(0, label, key, 0), jpeg))
    rec.close()
    if classes is not None:
        with open(prefix + ".classes.txt", "w") as f:
            f.write("".join(f"class {i}\n" for i in range(classes)))
    stored = np.asarray(labels, np.float32).astype(float)       # MXNet stores float32
    bound = classes if classes is not None else float("inf")
    good = all(np.isfinite(v) and v >= 0 and v == int(v) and v < bound for v in stored)
    try:
        _, info = checked_index(prefix + ".rec")
    except UserError as err:
        assert one_sentence(err) and not good, err
        return
    assert good, f"labels {stored.tolist()} were admitted with {classes} classes"
    assert info.classes == (classes if classes is not None else int(max(stored)) + 1)
