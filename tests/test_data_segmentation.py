"""The image / mask reader: what it reads is what was written (PIL, the arrays the test saved),
its ADE20K pairing is GluonCV's own ``_get_ade20k_pairs``, and every bad input is refused in
one sentence naming the file."""
import os

import numpy as np
import pytest
from PIL import Image

from resnest.gluon.data.segmentation import SegmentationSamples, read_mask
from resnest.gluon.utils.errors import UserError
from _errors import one_sentence

K = 4          # classes; PNG values 0..4


def _photo(i, shape=(60, 80)):
    import skimage.data
    src = (skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea())[i % 3]
    return np.ascontiguousarray(src[:shape[0], :shape[1]])


def _mask_of(img):
    """A real-photo label map on 0..K (0 = unlabelled)."""
    return (img.mean(axis=2) * (K + 1) / 256).astype(np.uint8)


def _write_pair(image_dir, mask_dir, stem, i, fmt="png", shape=(60, 80)):
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(mask_dir, exist_ok=True)
    img = _photo(i, shape)
    mask = _mask_of(img)
    Image.fromarray(img).save(os.path.join(image_dir, f"{stem}.{fmt}"))
    Image.fromarray(mask).save(os.path.join(mask_dir, f"{stem}.png"))
    return img, mask


@pytest.fixture
def pairs(tmp_path):
    """A plain images/ + masks/ folder of three PNG photos with their masks."""
    root = tmp_path / "pairs"
    written = [_write_pair(str(root / "images"), str(root / "masks"), f"p{i}", i)
               for i in range(3)]
    return str(root), written


@pytest.fixture
def ade(tmp_path):
    """An ADE20K-layout folder (JPEG images) with a classes.txt of K names."""
    root = tmp_path / "ADEChallengeData2016"
    for split, folder in (("train", "training"), ("val", "validation")):
        for i in range(3):
            _write_pair(str(root / "images" / folder), str(root / "annotations" / folder),
                        f"ADE_{split}_{i:08d}", i, fmt="jpg")
    (root / "classes.txt").write_text("".join(f"c{i}\n" for i in range(K)))
    return str(root)


def test_pairs_read_back_exactly_what_was_written(pairs):
    root, written = pairs
    samples = SegmentationSamples(root, classes=K)
    assert len(samples) == 3 and samples.layout == "pairs"
    for i, (img, mask) in enumerate(written):
        got_img, got_mask = samples.read(i)
        np.testing.assert_array_equal(got_img, img)          # PNG: lossless
        np.testing.assert_array_equal(got_mask, mask)
    want = sum(np.bincount(m.ravel(), minlength=K + 1) for _, m in written)
    np.testing.assert_array_equal(samples.check(), want)


def test_ade20k_pairs_are_gluoncvs(ade):
    ade_seg = pytest.importorskip("gluoncv.data.ade20k.segmentation")
    for split in ("train", "val"):
        samples = SegmentationSamples(os.path.dirname(ade), split)   # the parent works too
        images, masks = ade_seg._get_ade20k_pairs(ade, split)
        assert [(os.path.realpath(a), os.path.realpath(b)) for a, b in samples.items] == \
            sorted(zip(map(os.path.realpath, images), map(os.path.realpath, masks)))
        assert samples.classes == [f"c{i}" for i in range(K)] and samples.num_classes == K
        img, mask = samples.read(0)
        want = np.asarray(Image.open(samples.items[0][0]).convert("RGB")).astype(int)
        # JPEG: OpenCV's and PIL's libjpeg may round the colour conversion differently
        assert np.abs(img.astype(int) - want).max() <= 2
        np.testing.assert_array_equal(mask, np.array(Image.open(samples.items[0][1])))


def test_palette_masks_are_read_as_indices_like_gluoncv(tmp_path):
    mask = _mask_of(_photo(0))
    pal = Image.fromarray(mask, mode="L").convert("P")
    pal.putpalette([255 - (i * 37) % 256 for i in range(768)])    # colours unrelated to index
    path = str(tmp_path / "m.png")
    pal.save(path)
    np.testing.assert_array_equal(read_mask(path), np.array(Image.open(path)))
    np.testing.assert_array_equal(read_mask(path), mask)


def _refused(root, names, split=None, classes=K, read=None):
    with pytest.raises(UserError) as err:
        samples = SegmentationSamples(root, split, classes)
        if read is not None:
            samples.read(read)
    return one_sentence(err, *names)


def test_mask_of_another_size_is_refused(pairs, tmp_path):
    root, _ = pairs
    path = os.path.join(root, "masks", "p1.png")
    Image.fromarray(np.zeros((61, 80), np.uint8)).save(path)
    _refused(root, [path, os.path.join(root, "images", "p1.png"), "80x61"], read=1)


def test_label_beyond_the_classes_is_refused(pairs):
    root, written = pairs
    path = os.path.join(root, "masks", "p2.png")
    mask = written[2][1].copy()
    mask[5, 7] = K + 1
    Image.fromarray(mask).save(path)
    text = _refused(root, [path, str(K + 1)], read=2)
    assert f"{K} classes" in text
    SegmentationSamples(root, classes=K + 1).read(2)                 # with K + 1 it is fine


def test_image_without_mask_and_mask_without_image_are_refused(pairs):
    root, _ = pairs
    lonely = os.path.join(root, "images", "p3.png")
    Image.fromarray(_photo(0)).save(lonely)
    _refused(root, [lonely, "p3.png"])
    os.remove(lonely)
    orphan = os.path.join(root, "masks", "p9.png")
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(orphan)
    _refused(root, [orphan])


@pytest.mark.parametrize("which", ["image", "mask"])
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_unreadable_files_are_refused_when_read(pairs, which, damage):
    root, _ = pairs
    path = os.path.join(root, "images" if which == "image" else "masks", "p0.png")
    data = open(path, "rb").read()
    with open(path, "wb") as fout:
        fout.write(b"not an image at all" if damage == "garbage" else data[:len(data) // 2])
    _refused(root, [path], read=0)


def test_truncated_jpeg_image_is_refused(ade):
    path = os.path.join(ade, "images", "validation", "ADE_val_00000001.jpg")
    data = open(path, "rb").read()
    open(path, "wb").write(data[:len(data) * 2 // 3])
    _refused(ade, [path], split="val", classes=None, read=1)


def test_rotated_jpeg_is_refused(ade):
    path = os.path.join(ade, "images", "training", "ADE_train_00000000.jpg")
    img = Image.open(path)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, exif=exif)
    _refused(ade, [path, "orientation 6"], split="train", classes=None, read=0)


def test_colour_and_jpeg_masks_are_refused(pairs):
    root, written = pairs
    path = os.path.join(root, "masks", "p0.png")
    Image.fromarray(np.stack([written[0][1]] * 3, axis=2)).save(path)
    _refused(root, [path, "'RGB'"], read=0)
    os.replace(path, os.path.join(root, "masks", "p0.jpg"))
    _refused(root, [os.path.join(root, "masks", "p0.jpg"), "PNG"])


def test_two_images_of_one_stem_are_refused(pairs):
    root, _ = pairs
    extra = os.path.join(root, "images", "p0.jpg")
    Image.fromarray(_photo(0)).save(extra)
    _refused(root, [extra, os.path.join(root, "images", "p0.png")])


def test_layout_split_and_class_mistakes_are_refused(pairs, ade, tmp_path):
    root, _ = pairs
    _refused(root, [root, "split='train'"], split="train")
    _refused(ade, [ade, "'test'"], split="test", classes=None)
    _refused(str(tmp_path / "nowhere"), [str(tmp_path / "nowhere")])
    _refused(root, [root, "classes.txt"], classes=None)
    _refused(ade, [os.path.join(ade, "classes.txt"), "5"], split="val", classes=5)
    _refused(ade, [os.path.join(ade, "classes.txt"), "'c2'", "'x'"], split="val",
             classes=["c0", "c1", "x", "c3"])
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    _refused(str(empty), [str(empty / "images")])


def test_published_class_list_by_name(ade):
    os.remove(os.path.join(ade, "classes.txt"))
    samples = SegmentationSamples(ade, "val", classes="ade20k")
    assert samples.num_classes == 150 and samples.classes[0] == "wall"


def test_truncated_mask_is_refused_even_with_pils_load_truncated_flag(pairs, monkeypatch):
    # gluoncv/data/mhp.py sets this flag for the whole process when gluoncv.data is imported
    from PIL import ImageFile
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    root, _ = pairs
    path = os.path.join(root, "masks", "p1.png")
    data = open(path, "rb").read()
    open(path, "wb").write(data[:len(data) - 40])
    with Image.open(path) as im:                       # the hazard: PIL alone decodes it
        assert np.array(im).shape == (60, 80)
    _refused(root, [path], read=1)
