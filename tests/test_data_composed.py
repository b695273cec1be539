"""The composed data set, rebuilt independently from the packaged sources: every mask is
exactly the visible pasted pixels of its digit scan, the JPEG is the described composition,
the COCO file is what pycocotools reads and writes, the PNG is the union of the instances,
the splits share no source, and the folder rules (deterministic bytes, idempotent, atomic,
refusals) hold."""
import contextlib
import hashlib
import io
import json
import os

import cv2
import numpy as np
import pytest

from resnest.gluon.data import composed
from resnest.gluon.data.composed import PHOTOS, coco_paths, write_composed
from resnest.gluon.utils.errors import UserError
from _errors import one_sentence

mask_util = pytest.importorskip("pycocotools.mask")
SMALL = dict(size=128, train_images=8, val_images=5, seed=3, objects=(3, 7),
             object_size=(24, 64), min_visible=0.5)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("composed") / "set")
    counts = write_composed(out, **SMALL)
    assert counts["train"]["dropped"] + counts["val"]["dropped"] > 0   # the rule is exercised
    return out


@pytest.fixture(scope="module")
def sources():
    from sklearn.datasets import load_digits
    return load_digits()


def _composition(root):
    with open(os.path.join(root, "composition.json")) as fcomp:
        return json.load(fcomp)["splits"]


def _coco(root, split):
    from pycocotools.coco import COCO
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(coco_paths(root, split)[0])


def _objects(record, scans, size):
    """Each paste's object (ink above one half after the bilinear upscale, in float32) placed
    on the canvas, and its shaded colour; computed here from the scans, not by the module."""
    placed = []
    for paste in record["pastes"]:
        h, w, top, left = paste["height"], paste["width"], paste["top"], paste["left"]
        ink = cv2.resize((scans[paste["digit_index"]] / 16.0).astype(np.float32), (w, h),
                         interpolation=cv2.INTER_LINEAR)
        canvas = np.zeros((size, size), bool)
        canvas[top:top + h, left:left + w] = ink > 0.5
        colour = np.zeros((size, size, 3), np.float32)
        colour[top:top + h, left:left + w] = (np.float32(paste["colour"])
                                              * (0.6 + 0.4 * ink[:, :, None]))
        placed.append((canvas, colour))
    return placed


def _visible(placed, keep):
    """Per paste, the pixels it owns when only ``keep`` are pasted (later ones on top)."""
    owner = np.full(placed[0][0].shape, -1)
    for k, (canvas, _) in enumerate(placed):
        if keep[k]:
            owner[canvas] = k
    return [owner == k for k in range(len(placed))]


@pytest.mark.parametrize("split", ["train", "val"])
def test_masks_are_exactly_the_visible_pasted_pixels(root, sources, split):
    size = SMALL["size"]
    coco = _coco(root, split)
    for record in _composition(root)[split]:
        placed = _objects(record, sources.images, size)
        everything = _visible(placed, [True] * len(placed))
        keep = [everything[k].sum() >= 0.5 * placed[k][0].sum() for k in range(len(placed))]
        assert [p["kept"] for p in record["pastes"]] == keep
        for k, visible in enumerate(_visible(placed, keep)):
            paste = record["pastes"][k]
            if not keep[k]:
                assert "annotation_id" not in paste
                continue
            ann = coco.anns[paste["annotation_id"]]
            assert ann["category_id"] == 1 + sources.target[paste["digit_index"]]
            np.testing.assert_array_equal(coco.annToMask(ann), visible.astype(np.uint8))
            assert visible.sum() >= 0.5 * placed[k][0].sum()


def _photo(name):
    """A photo named in composition.json, loaded here straight from its package."""
    source, key = name.split(":")
    if source == "sklearn":
        from sklearn.datasets import load_sample_image
        img = load_sample_image(key)
    else:
        import skimage.data
        img = getattr(skimage.data, key)()
        img = img[0] if key == "stereo_motorcycle" else img       # (left, right, disparity)
    return np.dstack([img] * 3) if img.ndim == 2 else img


def _background(record, size):
    top, left, side = record["crop"]
    img = _photo(record["photo"])[top:top + side, left:left + side]
    img = np.ascontiguousarray(img[:, ::-1] if record["flip"] else img)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)


@pytest.mark.parametrize("split", ["train", "val"])
def test_images_are_the_described_composition(root, sources, split):
    """Rebuilt from the named photo, crop and pastes, the image equals the JPEG up to JPEG's
    loss: so the pixels under each mask are the pasted digit and the rest is the photo.

    JPEG (quality 95, 4:2:0 chroma) smears colour across sharp edges, so the comparison is on
    the interiors (eroded by 2 pixels): measured, the mean error per object interior is at
    most 3 (its largest pixel 9) and per background interior at most 4, while the photo under
    an object differs from the paste by 23 or more on average.
    """
    size = SMALL["size"]
    folder = coco_paths(root, split)[1]
    kernel = np.ones((5, 5), np.uint8)
    for record in _composition(root)[split]:
        photo = _background(record, size)
        want = photo.copy()
        placed = _objects(record, sources.images, size)
        visible = _visible(placed, [p["kept"] for p in record["pastes"]])
        for k, mask in enumerate(visible):
            want[mask] = np.round(placed[k][1][mask])
        got = cv2.imread(os.path.join(folder, record["file_name"]))[:, :, ::-1]
        err = np.abs(got.astype(np.float32) - want).mean(axis=2)
        for mask in visible:
            inner = cv2.erode(mask.astype(np.uint8), kernel) > 0
            if inner.sum() >= 10:
                assert err[inner].mean() < 5 and err[inner].max() < 20, record["file_name"]
        outside = cv2.erode((~np.any(visible, axis=0)).astype(np.uint8), kernel) > 0
        assert err[outside].mean() < 6, record["file_name"]


@pytest.mark.parametrize("split", ["train", "val"])
def test_coco_file_is_what_pycocotools_reads_and_writes(root, split):
    coco = _coco(root, split)
    path, folder = coco_paths(root, split)
    assert sorted(coco.getCatIds()) == list(range(1, 11))
    assert [coco.cats[c]["name"] for c in range(1, 11)] == [f"digit {d}" for d in range(10)]
    assert len(coco.imgs) == SMALL[f"{split}_images"]
    assert all(os.path.isfile(os.path.join(folder, img["file_name"])) and
               img["width"] == img["height"] == SMALL["size"] for img in coco.imgs.values())
    ids = [a["id"] for a in coco.dataset["annotations"]]
    assert len(ids) == len(set(ids)) > 0
    for ann in coco.dataset["annotations"]:
        rle = ann["segmentation"]
        assert ann["iscrowd"] == 0 and isinstance(rle["counts"], str)
        mask = coco.annToMask(ann)
        # the box is the tight box of the visible mask, as pycocotools computes it
        assert ann["bbox"] == mask_util.toBbox(rle).tolist()
        ys, xs = np.nonzero(mask)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                               ys.max() - ys.min() + 1]
        assert ann["area"] == mask_util.area(rle) == mask.sum()


@pytest.mark.parametrize("split", ["train", "val"])
def test_segmentation_png_is_the_union_of_the_instances(root, split):
    from PIL import Image
    coco = _coco(root, split)
    ade_folder = {"train": "training", "val": "validation"}[split]
    for image_id, img in coco.imgs.items():
        png = np.array(Image.open(os.path.join(
            root, "annotations", ade_folder, img["file_name"][:-4] + ".png")))
        want = np.ones((img["height"], img["width"]), np.int64)      # 1 = background
        cover = np.zeros_like(want)
        for ann in coco.imgToAnns[image_id]:
            mask = coco.annToMask(ann).astype(bool)
            want[mask] = 1 + ann["category_id"]                       # 2 + digit
            cover += mask
        assert cover.max() <= 1                                       # instances are disjoint
        np.testing.assert_array_equal(png, want)


def test_readers_take_the_set(root):
    from resnest.gluon.data.coco import CocoSamples
    from resnest.gluon.data.segmentation import SegmentationSamples
    seg = SegmentationSamples(root, "val")
    assert seg.classes == ["background"] + [f"digit {d}" for d in range(10)]
    counts = seg.check()
    assert counts[0] == 0 and counts.sum() == SMALL["val_images"] * SMALL["size"] ** 2
    det = CocoSamples(*coco_paths(root, "train"))
    assert len(det) == SMALL["train_images"] and det.empty_image_ids == []
    assert [os.path.basename(p) for p, _ in SegmentationSamples(root, "train").items] == \
        [det.coco.imgs[i]["file_name"] for i in det.image_ids]


def test_splits_share_no_photo_and_no_digit_scan(root):
    comp = _composition(root)
    photos = {s: {r["photo"] for r in comp[s]} for s in comp}
    digits = {s: {p["digit_index"] for r in comp[s] for p in r["pastes"]} for s in comp}
    assert photos["train"] <= set(PHOTOS["train"]) and photos["val"] <= set(PHOTOS["val"])
    assert not set(PHOTOS["train"]) & set(PHOTOS["val"]) and not digits["train"] & digits["val"]
    # by pixels, not names: skimage's cat() is chelsea(), for one
    for a in PHOTOS["train"]:
        for b in PHOTOS["val"]:
            pa, pb = _photo(a), _photo(b)
            assert pa.shape != pb.shape or not np.array_equal(pa, pb), (a, b)


def _digest(folder):
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fin:
                out[os.path.relpath(path, folder)] = hashlib.sha1(fin.read()).hexdigest()
    return out


def test_same_seed_same_bytes_and_another_seed_other_images(root, tmp_path):
    again = str(tmp_path / "again")
    write_composed(again, **SMALL)
    assert _digest(again) == _digest(root)
    other = str(tmp_path / "other")
    write_composed(other, **dict(SMALL, seed=4))
    first, second = _digest(root), _digest(other)
    images = [k for k in first if k.endswith(".jpg")]
    assert sum(first[k] != second[k] for k in images) == len(images)


def test_complete_folder_is_left_alone_and_others_are_refused(root, tmp_path):
    before = {p: os.stat(os.path.join(root, p)).st_mtime_ns for p in _digest(root)}
    assert write_composed(root, **SMALL) is None
    assert before == {p: os.stat(os.path.join(root, p)).st_mtime_ns for p in _digest(root)}
    with pytest.raises(UserError) as err:
        write_composed(root, **dict(SMALL, val_images=6))
    one_sentence(err, root, "other settings")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(UserError) as err:
        write_composed(str(busy), **SMALL)
    one_sentence(err, str(busy))
    assert os.listdir(busy) == ["holiday.jpg"]


def test_a_failed_write_leaves_no_folder_and_a_rerun_completes(tmp_path, monkeypatch):
    out = str(tmp_path / "set")
    real, calls = cv2.imwrite, []

    def failing(*args):
        calls.append(args[0])
        if len(calls) == 7:
            raise OSError(28, "No space left on device")
        return real(*args)

    monkeypatch.setattr(composed.cv2, "imwrite", failing)
    with pytest.raises(OSError):
        write_composed(out, **SMALL)
    assert not os.path.exists(out) and not os.path.exists(out + ".partial")
    monkeypatch.setattr(composed.cv2, "imwrite", real)
    assert write_composed(out, **SMALL) is not None
    assert not os.path.exists(out + ".partial")
    assert os.path.isfile(os.path.join(out, ".complete.json"))


@pytest.mark.parametrize("bad,named", [
    (dict(size=16), "size"), (dict(val_images=0), "val-images"), (dict(objects=(3, 2)), "objects"),
    (dict(object_size=(24, 400)), "object-size"), (dict(min_visible=0.0), "min-visible")])
def test_bad_settings_are_one_sentence(tmp_path, bad, named):
    with pytest.raises(UserError) as err:
        write_composed(str(tmp_path / "x"), **dict(SMALL, **bad))
    one_sentence(err, named)
    assert not os.path.exists(tmp_path / "x")
