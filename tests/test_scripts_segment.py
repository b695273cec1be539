"""segment.py: real photos (files, a folder, a glob) segmented by a published segmentation
model (a tiny DeepLab put in a local weights store under the published file name). Expected
labels come from the model run by hand on MXNet's own ToTensor + Normalize (GluonCV test.py's
preprocessing) with the argmax by numpy; names from GluonCV's ADE20K class list; pixel
shares from numpy's bincount; the PNG and overlay are read back by PIL."""
import json
import os
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon.data.vision import transforms as T
from PIL import Image

from _errors import one_sentence
from _images import photos
from _published import publish_file
from conftest import REPO, randomize_bn
from resnest.gluon import UserError, get_model
from resnest.gluon.pretrained import SegmentationEval

gluoncv = pytest.importorskip("gluoncv")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)        # GluonCV test.py's Normalize
MODEL = "deeplab_resnest_tiny"


@pytest.fixture(scope="module")
def main():
    sys.path.insert(0, os.path.join(REPO, "scripts", "gluon"))
    import segment
    return segment.main


@pytest.fixture
def published(tmp_path, monkeypatch):
    """A random 150-class tiny DeepLab (random BN too, so its labels vary over an image),
    published as ADE20K weights in a store under tmp_path."""
    mx.random.seed(3)
    net = get_model(MODEL, classes=150)
    net.initialize(mx.init.Xavier(magnitude=3))
    randomize_bn(net, mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(tmp_path / "w.params"))
    publish_file(monkeypatch, tmp_path / "home", MODEL, str(tmp_path / "w.params"),
                 task="segmentation", eval=SegmentationEval(), class_list="ade20k", classes=150)
    return net


def _photos(folder):
    """Three real photo crops of different sizes: two in a folder, one loose; paths."""
    china, flower = photos()
    (folder / "dir").mkdir(parents=True)
    crops = {folder / "dir" / "a.jpg": china[100:148, 200:264],
             folder / "dir" / "b.png": flower[50:90, 30:86],
             folder / "c.jpg": china[300:356, 10:50]}
    for path, rgb in crops.items():
        Image.fromarray(np.ascontiguousarray(rgb)).save(path, quality=95)
    return crops


def _by_hand(net, path):
    rgb = np.asarray(Image.open(path).convert("RGB"))
    x = T.Normalize(MEAN, STD)(T.ToTensor()(mx.nd.array(rgb, dtype="uint8"))).expand_dims(0)
    out = net(x)
    return rgb, (out[0] if isinstance(out, (list, tuple)) else out)[0].asnumpy().argmax(axis=0)


def test_files_folders_globs_give_pngs_overlays_and_shares(main, published, tmp_path):
    crops = _photos(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["--model", MODEL, "--backend", "mxnet", "-j", "0", "--out", str(out),
                 str(tmp_path / "in" / "dir"), str(tmp_path / "in" / "c.*")]) == 0
    summary = json.loads((out / "segment.json").read_text())
    assert summary["backend"] == "mxnet" and summary["protocol"] == "single-scale"
    rows = {os.path.basename(r["image"]): r for r in summary["images"]}
    assert sorted(rows) == ["a.jpg", "b.png", "c.jpg"]
    names = gluoncv.data.ADE20KSegmentation.CLASSES
    for path in crops:
        rgb, want = _by_hand(published, path)
        assert len(np.unique(want)) > 1                      # a meaningful comparison
        stem = path.stem
        png = Image.open(out / f"{stem}.png")
        assert png.mode == "P"
        np.testing.assert_array_equal(np.asarray(png), want + 1)   # class c is value c + 1
        row = rows[path.name]
        assert (row["height"], row["width"]) == want.shape
        counts = np.bincount(want.ravel(), minlength=150)
        assert sorted(c["index"] for c in row["classes"]) == list(np.nonzero(counts)[0])
        for c in row["classes"]:
            assert c["name"] == names[c["index"]] and c["pixels"] == counts[c["index"]]
            assert c["share"] == pytest.approx(counts[c["index"]] / want.size, abs=1e-6)
        assert [c["pixels"] for c in row["classes"]] == \
            sorted((c["pixels"] for c in row["classes"]), reverse=True)
        # the overlay: half the photo, half the PNG palette's colour of each pixel (JPEG)
        colours = np.asarray(png.getpalette()[:3 * 151], np.float32).reshape(151, 3)
        mixed = 0.5 * rgb + 0.5 * colours[want + 1]
        overlay = np.asarray(Image.open(out / f"{stem}.overlay.jpg"), np.float32)
        assert overlay.shape == rgb.shape and np.abs(overlay - mixed).mean() < 6


def test_onnxruntime_backend_gives_the_same_labels(main, published, tmp_path):
    pytest.importorskip("onnxruntime")
    crops = _photos(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["--model", MODEL, "--backend", "onnxruntime", "-j", "0", "--out", str(out),
                 str(tmp_path / "in")]) == 0
    assert json.loads((out / "segment.json").read_text())["backend"] == "onnxruntime"
    for path in crops:
        _, want = _by_hand(published, path)
        got = np.asarray(Image.open(out / f"{path.stem}.png")).astype(np.int64) - 1
        assert np.mean(got == want) > 0.999                 # float32 ties may flip a pixel


def test_unreadable_file_is_named_and_the_rest_segmented(main, published, tmp_path, capsys):
    _photos(tmp_path / "in")
    (tmp_path / "in" / "dir" / "broken.jpg").write_bytes(b"not an image")
    assert main(["--model", MODEL, "--backend", "mxnet", "-j", "0", "--out",
                 str(tmp_path / "out"), str(tmp_path / "in" / "dir")]) == 1
    err = capsys.readouterr().err
    assert "cannot segment" in err and "broken.jpg" in err and "1 could not be read" in err
    rows = json.loads((tmp_path / "out" / "segment.json").read_text())["images"]
    assert [r["error"] is None for r in rows] == [True, True, False]
    assert not (tmp_path / "out" / "broken.png").exists()


def test_bad_requests_are_one_sentence(main, published, tmp_path):
    _photos(tmp_path / "in")
    args = ["--model", MODEL, "--backend", "mxnet", "-j", "0", "--out", str(tmp_path / "out")]
    assert main([*args, str(tmp_path / "in" / "c.jpg")]) == 0
    with pytest.raises(UserError) as err:                    # an earlier run's results
        main([*args, str(tmp_path / "in" / "c.jpg")])
    one_sentence(err, "--force")
    assert main([*args, "--force", str(tmp_path / "in" / "c.jpg")]) == 0
    with pytest.raises(UserError) as err:
        main([*args, "--force", str(tmp_path / "missing")])
    one_sentence(err, "missing")
    with pytest.raises(UserError) as err:
        main(["--model", "resnest_tiny", "--out", str(tmp_path / "o2"),
              str(tmp_path / "in" / "c.jpg")])
    one_sentence(err, "resnest_tiny", "segmentation")
