"""The evaluation preprocessing equals the authors' scripts/gluon/verify.py on real photos.

The reference below is written from that script (zhanghang1989/ResNeSt, scripts/gluon/verify.py):
crops up to 320 go through MXNet's ``transforms.Resize(ceil(crop / crop_ratio),
keep_ratio=True)`` and ``transforms.CenterCrop(crop)``; larger crops through its "ECenterCrop"
(PIL crop of the centred square of ``crop / (crop + 32)`` of the short side, torchvision's
``Resize((crop, crop), BICUBIC)``, i.e. PIL's bicubic resize); then ``ToTensor`` and
``Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])``.
"""
import math
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon.data.vision import transforms as T
from PIL import Image

from _images import photos
from conftest import REPO
from resnest.gluon.data import eval_loader, eval_transform
from resnest.gluon.pretrained import eval_settings

# (width, height) of ImageNet-like photos, portrait and landscape, and odd sizes.
SIZES = [(500, 375), (375, 500), (333, 500), (1024, 683), (250, 250), (481, 357), (640, 427)]
CROPS = [224, 256, 320, 416]


def authors_verify_transform(img, crop, crop_ratio=0.875):
    """The authors' verify.py transform of one RGB uint8 image (see the module doc)."""
    if crop > 320:
        pil = Image.fromarray(img)                               # ToPIL
        width, height = pil.size
        size = float(crop) / (crop + 32) * min(width, height)
        top = int(round((height - size) / 2.))
        left = int(round((width - size) / 2.))
        pil = pil.crop((left, top, left + size, top + size))
        pil = pil.resize((crop, crop), Image.BICUBIC)            # torchvision Resize on PIL
        x = mx.nd.array(np.array(pil), mx.cpu(0))                # ToNDArray
    else:
        x = mx.nd.array(img, dtype="uint8")
        x = T.Resize(int(math.ceil(crop / crop_ratio)), keep_ratio=True)(x)
        x = T.CenterCrop(crop)(x)
    x = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])(T.ToTensor()(x))
    return x.asnumpy()


def real_photos():
    """Real photos at the sizes above, cut and resized from scikit-learn's sample photos."""
    out = []
    for i, (width, height) in enumerate(SIZES):
        src = Image.fromarray(photos()[i % 2])
        if width / height > src.width / src.height:       # crop the source to the aspect
            h = int(src.width * height / width)
            src = src.crop((0, (src.height - h) // 2, src.width, (src.height - h) // 2 + h))
        else:
            w = int(src.height * width / height)
            src = src.crop(((src.width - w) // 2, 0, (src.width - w) // 2 + w, src.height))
        out.append(np.asarray(src.resize((width, height), Image.LANCZOS)))
    return out


def _close(ours, theirs):
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    diff = np.abs(ours - theirs)
    assert diff.mean() <= 0.002 and diff.max() <= 0.06, (diff.mean(), diff.max())


@pytest.mark.parametrize("crop", CROPS)
def test_equals_the_authors_verify_transform_on_real_photos(crop):
    ours = eval_transform(crop_size=crop)
    for img in real_photos():
        want = authors_verify_transform(img, crop)
        assert want.shape == (3, crop, crop)
        _close(ours(img), want)


def test_published_models_get_their_published_settings():
    # The table of shared facts: crop, resize and method per published model.
    want = {"resnest14": (224, 256, "resize-center-crop"),
            "resnest50": (224, 256, "resize-center-crop"),
            "resnest101": (256, 293, "resize-center-crop"),
            "resnest200": (320, 366, "resize-center-crop"),      # 320 is not > 320
            "resnest269": (416, None, "ecenter-crop"),
            "resnest50_fast_4s2x40d": (224, 256, "resize-center-crop")}
    for model, (crop, resize, method) in want.items():
        s = eval_settings(model)
        assert (s.crop_size, s.method) == (crop, method), model
        if resize:
            assert s.resize == resize, model
        assert s.mean == (0.485, 0.456, 0.406) and s.std == (0.229, 0.224, 0.225)
    img = real_photos()[0]
    _close(eval_transform("resnest269")(img), authors_verify_transform(img, 416))
    _close(eval_transform("resnest101")(img), authors_verify_transform(img, 256))


def test_a_cv2_or_unantialiased_resize_would_fail_the_bound():
    """The bound can fail: OpenCV's bicubic (no antialiasing) instead of PIL's at 416."""
    import cv2
    img = real_photos()[3]                                        # 1024 x 683: shrinks a lot
    side = 416 / 448 * 683
    top, left = int(round((683 - side) / 2)), int(round((1024 - side) / 2))
    crop = img[top:top + int(round(side)), left:left + int(round(side))]
    wrong = cv2.resize(crop, (416, 416), interpolation=cv2.INTER_CUBIC)
    wrong = ((wrong / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).astype(np.float32)
    with pytest.raises(AssertionError):
        _close(wrong.transpose(2, 0, 1), authors_verify_transform(img, 416))


@pytest.mark.parametrize("crop", [224, 416])
def test_the_eval_loader_equals_the_authors_record_pipeline(tmp_path, crop):
    """Decoding included: our loader over a packed .rec against MXNet's ImageRecordDataset
    with the authors' transform, as their verify.py reads --rec-dir."""
    import runpy
    tree = tmp_path / "tree"
    for i, img in enumerate(real_photos()):
        os.makedirs(tree / f"c{i % 2}", exist_ok=True)
        Image.fromarray(img).save(tree / f"c{i % 2}" / f"{i}.jpg", quality=90)
    im2rec = runpy.run_path(os.path.join(REPO, "scripts", "dataset", "im2rec.py"))["main"]
    assert im2rec([str(tree), str(tmp_path / "val"), "--pass-through", "--no-progress",
                   "--workers", "1"]) == 0
    rec = str(tmp_path / "val.rec")
    theirs = mx.gluon.data.vision.ImageRecordDataset(rec)
    loader = eval_loader(rec, 4, eval_transform(crop_size=crop), num_workers=0)
    got = np.concatenate([d.asnumpy()[:v] for d, _, v in loader])
    want = np.stack([authors_verify_transform(theirs[i][0].asnumpy(), crop)
                     for i in range(len(theirs))])
    assert got.shape == want.shape == (len(SIZES), 3, crop, crop)
    _close(got, want)


def test_fused_color_jitter_lighting_normalize_equals_the_steps():
    from resnest.gluon.data.transforms import color_normalize_chw
    img = photos()[1][:48, :40]
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    grey = np.array([0.299, 0.587, 0.114])
    eigval = np.array([55.46, 4.794, 1.148])
    eigvec = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                       [-0.5836, -0.6948, 0.4203]])
    for seed in range(6):
        rng = np.random.RandomState(seed)        # the steps one by one, in float64
        out = img.astype(np.float64)
        for op in rng.permutation(3):
            f = 1 + rng.uniform(-0.4, 0.4)
            if op == 0:
                out = out * f
            elif op == 1:
                out = out * f + (out @ grey).mean() * (1 - f)
            else:
                out = out * f + (out @ grey)[:, :, None] * (1 - f)
        out = np.clip(out, 0, 255)
        out = out + eigvec @ (rng.normal(0, 0.1, size=3) * eigval)
        want = ((out / 255 - mean) / std).transpose(2, 0, 1)
        got = color_normalize_chw(img, 0.4, 0.1, mean, std, np.random.RandomState(seed))
        assert got.dtype == np.float32 and got.shape == (3, 48, 40)
        assert np.abs(got - want).max() < 1e-3
