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
from resnest.gluon.checkpoint import CheckpointRecord
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


# -- checkpoints: damaged files and edited records are refused, or read back exactly --

JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(-1e6, 1e6)
                    | st.text(max_size=6), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)


@st.composite
def records(draw):
    from resnest.gluon.checkpoint import CheckpointRecord
    epoch = draw(st.one_of(st.none(), st.integers(0, 200)))
    return CheckpointRecord(
        model=draw(st.sampled_from(["resnest_tiny", "resnest50", "deeplab_resnest_tiny"])),
        epoch=epoch, step=draw(st.one_of(st.none(), st.integers(1, 9))) if epoch is not None
        else None,
        task=draw(st.sampled_from(["classification", "segmentation"])),
        run_id=draw(st.one_of(st.none(), st.text("0123456789abcdef", min_size=8, max_size=8))),
        config=draw(st.dictionaries(st.text("abcdefgh_", min_size=1, max_size=6), JSON,
                                    max_size=4)),
        class_names=draw(st.one_of(st.none(), st.lists(st.sampled_from(
            ["cat", "dog", "n01440764", "b\u00e9tula"]), min_size=1, max_size=4))),
        eval=draw(st.dictionaries(st.sampled_from(["crop_size", "crop_ratio", "base_size"]),
                                  st.integers(1, 600) | st.floats(0.1, 1.0), max_size=3)))


@st.composite
def damage(draw, names=("json", "params", "states")):
    """``(file, how, arguments)``: flipped bytes, a cut, or (the JSON) a field edited,
    removed or added."""
    name = draw(st.sampled_from(names))
    how = draw(st.sampled_from(["flip", "cut"] + (["edit", "drop", "add"] if name == "json"
                                                  else [])))
    positions = draw(st.lists(st.tuples(st.floats(0, 1, exclude_max=True),
                                        st.integers(1, 255)), min_size=1, max_size=3))
    return name, how, positions, draw(JSON), draw(st.integers(0, 40))


def _damaged(data, how, positions, value, pick):
    if how == "flip":
        data = bytearray(data)
        for where, mask in positions:
            data[int(where * len(data))] ^= mask
        return bytes(data)
    if how == "cut":
        return data[:int(positions[0][0] * len(data))]
    record = json.loads(data)
    keys = sorted(record)
    key = keys[pick % len(keys)]
    if how == "edit":
        record[key] = value
    elif how == "drop":
        del record[key]
    else:
        record[f"extra{pick}"] = value
    return json.dumps(record).encode()


@given(records(), damage())
# found by hypothesis: one flipped bit of the JSON turned task "classification" into
# "classifibation" and the record read as valid (checkpoint.py now carries record_sha1)
@example(CheckpointRecord(model="resnest_tiny"), ("json", "edit", [(0.0, 1)], "classifibation",
                                                  15))
def test_damaged_checkpoints_are_refused_or_read_exactly(tmp_path, record, hurt):
    import mxnet as mx
    from resnest.gluon.checkpoint import (load_params_verified, read_record, read_verified,
                                          write_checkpoint)
    from resnest.gluon.utils.errors import UserError
    folder = tempfile.mkdtemp(dir=tmp_path)
    arrays = {"w": mx.nd.array(np.arange(6.0).reshape(2, 3)), "b": mx.nd.array([0.5, -1.0])}
    states = b"optimizer states \x00\x01\x02" * 3

    def write_states(path):
        with open(path, "wb") as f:
            f.write(states)
    paths = write_checkpoint(folder, record, lambda p: mx.nd.save(p, arrays), write_states)
    written = {name: open(paths[name], "rb").read() for name in paths}
    name, how, positions, value, pick = hurt
    changed = _damaged(written[name], how, positions, value, pick)
    with open(paths[name], "wb") as f:
        f.write(changed)
    try:
        got = read_record(paths["json"])
        params = load_params_verified(paths["params"], got.params_sha1)
        got_states = read_verified(paths["states"], got.states_sha1)
    except UserError as err:
        assert one_sentence(err)
        assert changed != written[name], f"the intact checkpoint was refused: {err}"
        return
    assert got.to_json() == record.to_json(), f"{how} of the .{name} gave another record"
    assert sorted(params) == ["b", "w"] and got_states == states
    for key, array in arrays.items():
        assert np.array_equal(params[key].asnumpy(), array.asnumpy())
