"""predict.py: the top-k of real images with the right names, scores equal to the model run by
hand on MXNet's own preprocessing, EXIF-upright files, .rec inputs with their class check,
bad files reported one line each, and one-sentence errors for bad input."""
import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon.data.vision import transforms as T
from PIL import Image, ImageOps

from _images import photos
from _published import publish
from conftest import REPO, openvino_or_skip
from resnest.gluon import UserError, get_model

PREDICT = os.path.join(REPO, "scripts", "gluon", "predict.py")
# The published weights' normalisation (torchvision's ImageNet mean and std on [0, 1]).
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def main():
    sys.path.insert(0, os.path.dirname(PREDICT))
    import predict
    return predict.main


def _run(main, capsys, *argv, text=None):
    """``main(argv)`` with the JSON rows written to a file; returns (code, rows, stderr) and
    puts what went to stdout in ``text`` (a list), if given."""
    out = os.path.join(os.environ["PREDICT_TMP"], "rows.json")
    code = main(list(argv) + ["--json", out])
    captured = capsys.readouterr()
    if text is not None:
        text.append(captured.out)
    with open(out, encoding="utf-8") as f:
        return code, json.load(f), captured.err


@pytest.fixture(autouse=True)
def _tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("PREDICT_TMP", str(tmp_path))


def _probs(net, images, crop, ratio):
    """Softmax of ``net`` on RGB ``images`` preprocessed by MXNet's own transforms as the
    authors' verify.py does: short side to ceil(crop / ratio) (bilinear), centre crop,
    normalise. One row per image."""
    resize = int(math.ceil(crop / ratio))
    pipeline = T.Compose([T.Resize(resize, keep_ratio=True), T.CenterCrop(crop), T.ToTensor(),
                          T.Normalize(MEAN, STD)])
    x = mx.nd.stack(*[pipeline(mx.nd.array(np.asarray(rgb), dtype="uint8")) for rgb in images])
    return mx.nd.softmax(net(x)).asnumpy()


def _scores(row):
    return {t["index"]: t["score"] for t in row["top"]}


@pytest.fixture(scope="module")
def ckpt(digits_net, tmp_path_factory):
    """The digits model as a checkpoint, with the JSON train.py writes beside it."""
    from resnest.gluon.checkpoint import CheckpointRecord, write_checkpoint
    root = tmp_path_factory.mktemp("ckpt")
    record = CheckpointRecord(model="resnest_tiny", epoch=3,
                              class_names=[f"digit {d}" for d in range(10)],
                              eval={"crop_size": 32, "crop_ratio": 1.0})
    return write_checkpoint(str(root), record, digits_net.save_parameters)["params"]


def _val_files(digits_data):
    root = digits_data[0] / "images" / "val"
    return sorted(str(p) for p in root.glob("*/*.jpg"))


def test_checkpoint_names_and_scores_are_the_models_own(main, capsys, ckpt, digits_net,
                                                        digits_data):
    files = _val_files(digits_data)
    code, rows, _ = _run(main, capsys, "--model", "resnest_tiny", "--resume", ckpt, "-j", "0",
                         "--topk", "3", str(digits_data[0] / "images" / "val"))
    assert code == 0 and [r["image"] for r in rows] == files        # every image, in order
    # The checkpoint's JSON says crop 32 at ratio 1.0; the images are real JPEG digits.
    probs = _probs(digits_net, [mx.image.imread(p).asnumpy() for p in files], 32, 1.0)
    hits = 0
    for path, row, want in zip(files, rows, probs):
        top = np.argsort(-want)[:3]
        assert [t["index"] for t in row["top"]] == list(top), path
        np.testing.assert_allclose([t["score"] for t in row["top"]], want[top], atol=1e-4)
        assert [t["name"] for t in row["top"]] == [f"digit {i}" for i in top]
        hits += row["top"][0]["name"] == "digit " + os.path.basename(os.path.dirname(path))
    assert hits / len(files) > 0.8                                  # the model has learnt


def test_published_weights_give_imagenet_wordnet_ids_and_names(main, capsys, tmp_path,
                                                                monkeypatch):
    from gluoncv.data.imagenet.classification import ImageNet1kAttr
    net, _ = publish(monkeypatch, tmp_path / "home")      # published crop 32, ratio 0.875
    china, flower = photos()
    paths = []
    for name, rgb in (("china.png", china), ("flower.png", flower)):
        Image.fromarray(rgb).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    text = []
    code, rows, _ = _run(main, capsys, "--model", "resnest_tiny", "-j", "0", *paths, text=text)
    assert code == 0 and len(rows) == 2
    attr = ImageNet1kAttr()
    lines = text[0].splitlines()
    for k, (rgb, row) in enumerate(zip((china, flower), rows)):
        want = _probs(net, [rgb], 32, 0.875)[0]
        top = np.argsort(-want)[:5]
        assert [t["index"] for t in row["top"]] == list(top)
        np.testing.assert_allclose([t["score"] for t in row["top"]], want[top], atol=1e-5)
        assert [(t["name"], t["description"]) for t in row["top"]] == [
            (attr.synset[i], attr.classes[i]) for i in top]
        # For people: the image, then "percent  WordNet id  name" per class.
        block = lines[6 * k:6 * k + 6]
        assert block[0] == paths[k]
        fields = block[1].split(None, 2)
        assert fields[1:] == [attr.synset[top[0]], attr.classes[top[0]]]
        assert float(fields[0].rstrip("%")) == pytest.approx(100 * want[top[0]], abs=0.01)


def test_exif_rotated_files_are_classified_upright(main, capsys, ckpt, digits_net,
                                                   digits_data, tmp_path):
    folder = tmp_path / "rotated"
    folder.mkdir()
    sources = _val_files(digits_data)[::18]                 # two per digit
    # Stored pixels turned so that the EXIF orientation turns them back upright.
    turns = {6: Image.ROTATE_90, 8: Image.ROTATE_270, 3: Image.ROTATE_180}
    upright, stored = [], []
    for k, src in enumerate(sources):
        orientation = list(turns)[k % 3]
        img = Image.open(src).convert("RGB")
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = folder / f"{k:02d}.jpg"
        img.transpose(turns[orientation]).save(path, quality=100, subsampling=0, exif=exif)
        with Image.open(path) as back:                     # PIL's own EXIF handling
            upright.append(np.asarray(ImageOps.exif_transpose(back).convert("RGB")))
            stored.append(np.asarray(back.convert("RGB")))
    code, rows, _ = _run(main, capsys, "--model", "resnest_tiny", "--resume", ckpt, "-j", "0",
                         "--topk", "10", str(folder))
    assert code == 0 and len(rows) == len(sources)
    got = np.array([[_scores(row)[i] for i in range(10)] for row in rows])
    np.testing.assert_allclose(got, _probs(digits_net, upright, 32, 1.0), atol=2e-3)
    unturned = (np.abs(got - _probs(digits_net, stored, 32, 1.0)).max(axis=1) > 0.05).sum()
    # Read without its EXIF turn, most images would score otherwise (some digits, like 0
    # and 8, look alike turned): the check above can tell upright from not.
    assert unturned >= len(rows) // 2, unturned


@pytest.fixture
def records(digits, tmp_path):
    """A copy of the shared digits' val pack (conftest.digits, packed by our packer with the
    JPEG bytes as they are): val.rec/.idx."""
    for ext in (".rec", ".idx"):
        shutil.copy(digits.val_rec[:-4] + ext, tmp_path / ("val" + ext))
    return tmp_path


def test_rec_input_gives_labels_and_refuses_other_classes(main, capsys, ckpt, records,
                                                          tmp_path_factory):
    names = [f"digit {d}" for d in range(10)]
    # The class list the checkpoint was trained on (as train.py would store it from this file).
    (records / "val.classes.txt").write_text("".join(n + "\n" for n in names))
    code, rows, _ = _run(main, capsys, "--model", "resnest_tiny", "--resume", ckpt, "-j", "2",
                         "--batch-size", "50", str(records / "val.rec"))
    keys = [line.split("\t")[0] for line in (records / "val.idx").read_text().splitlines()]
    assert code == 0 and [r["image"] for r in rows] == [f"{records}/val.rec#{k}" for k in keys]
    assert {r["label"] for r in rows} == set(names)
    assert np.mean([r["label"] == r["top"][0]["name"] for r in rows]) > 0.8
    # A class list in another order (what a missing class folder does) is refused.
    other = tmp_path_factory.mktemp("other")
    for ext in (".rec", ".idx"):
        shutil.copy(records / ("val" + ext), other / ("val" + ext))
    (other / "val.classes.txt").write_text("".join(n + "\n" for n in names[1:] + names[:1]))
    with pytest.raises(UserError, match="class 0 is 'digit 1' in the data but 'digit 0'"):
        main(["--model", "resnest_tiny", "--resume", ckpt, str(other / "val.rec")])


def test_batches_bad_files_and_csv(main, capsys, ckpt, digits_data, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    files = _val_files(digits_data)[::40]
    for k, src in enumerate(files):
        shutil.copy(src, folder / f"{k:02d}.jpg")
    data = (folder / "03.jpg").read_bytes()
    (folder / "03.jpg").write_bytes(data[:len(data) // 2])           # truncated JPEG
    (folder / "05.png").write_bytes(b"not a png" * 20)
    note = tmp_path / "notes.txt"
    note.write_text("not an image")
    bad = {str(folder / "03.jpg"), str(folder / "05.png"), str(note)}
    results = []
    for batch in ("1", "4", "64"):
        code, rows, err = _run(main, capsys, "--model", "resnest_tiny", "--resume", ckpt,
                               "-j", "0", "--batch-size", batch, str(folder), str(note))
        assert code == 1                                            # some images failed
        assert {r["image"] for r in rows if r["error"]} == bad
        assert all(not r["top"] for r in rows if r["error"])
        lines = [line for line in err.splitlines() if line.startswith("cannot classify")]
        assert sorted(line.split(" ")[2].rstrip(":") for line in lines) == sorted(bad)
        results.append(rows)
    # Every good image once, with the same scores whatever the batch size.
    assert len(results[0]) == len(files) + 2          # the copies, 05.png and notes.txt
    for rows in results[1:]:
        assert [r["image"] for r in rows] == [r["image"] for r in results[0]]
        for a, b in zip(rows, results[0]):
            assert _scores(a).keys() == _scores(b).keys()
            np.testing.assert_allclose(list(_scores(a).values()), list(_scores(b).values()),
                                       atol=1e-5)
    csv_path = tmp_path / "rows.csv"
    # The same batch size as results[0]: another batch runs other float kernels (above: 1e-5).
    assert main(["--model", "resnest_tiny", "--resume", ckpt, "-j", "0", "--topk", "2",
                 "--batch-size", "1", "--csv", str(csv_path), str(folder)]) == 1
    table = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert [t["image"] for t in table] == [r["image"] for r in results[0][:-1]]
    for t, r in zip(table, results[0]):
        assert t["error"] == (r["error"] or "")
        if r["top"]:
            assert (t["top1_name"], t["top2_name"]) == (r["top"][0]["name"], r["top"][1]["name"])
            assert float(t["top1_score"]) == pytest.approx(r["top"][0]["score"], abs=1e-6)


def test_int8_calibrates_on_the_inputs_and_agrees_with_float32(main, capsys, ckpt,
                                                               digits_data):
    val = str(digits_data[0] / "images" / "val")
    common = ["--model", "resnest_tiny", "--resume", ckpt, "-j", "0", "--batch-size", "60", val]
    _, fp32, _ = _run(main, capsys, *common)
    code, int8, err = _run(main, capsys, *common, "--dtype", "int8", "--calib-mode", "naive",
                           "--calib-batches", "2")
    assert code == 0 and len(int8) == len(fp32) == len(_val_files(digits_data))
    assert "int8: calibrating on 120 of the input images themselves" in err
    agree = np.mean([a["top"][0]["index"] == b["top"][0]["index"] for a, b in zip(int8, fp32)])
    assert agree >= 0.9, agree


def test_other_engines_classify_like_mxnet(main, capsys, ckpt, digits_data):
    """onnxruntime runs our ONNX export of the checkpoint: the same probabilities as MXNet;
    OpenVINO's int8 (calibrated on the inputs) names the same classes."""
    pytest.importorskip("onnxruntime")
    openvino_or_skip()
    val = str(digits_data[0] / "images" / "val")
    common = ["--model", "resnest_tiny", "--resume", ckpt, "-j", "0", "--batch-size", "60", val]
    _, ref, _ = _run(main, capsys, *common)
    code, ort, _ = _run(main, capsys, *common, "--backend", "onnxruntime")
    assert code == 0 and [r["image"] for r in ort] == [r["image"] for r in ref]
    for a, b in zip(ort, ref):
        assert _scores(a).keys() == _scores(b).keys()
        np.testing.assert_allclose(list(_scores(a).values()), list(_scores(b).values()),
                                   atol=1e-4)
    code, ov, err = _run(main, capsys, *common, "--backend", "openvino", "--dtype", "int8",
                         "--calib-batches", "2")
    assert code == 0 and "int8: calibrating on 120" in err and "engine: openvino" in err
    agree = np.mean([a["top"][0]["index"] == b["top"][0]["index"] for a, b in zip(ov, ref)])
    assert agree >= 0.9, agree


def test_bad_input_is_one_sentence(main, ckpt, tmp_path):
    base = ["--model", "resnest_tiny", "--resume", ckpt]
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    cases = [([], "no inputs given"),
             ([str(tmp_path / "empty")], "holds no image files"),
             ([str(tmp_path / "missing.jpg")], "missing.jpg does not exist"),
             ([str(tmp_path / "*.png")], "matches no files"),
             (["--topk", "0", str(tmp_path)], "--topk must be positive")]
    for argv, message in cases:
        with pytest.raises(UserError, match=message):
            main(base + argv)
    other = get_model("resnest14", classes=10)
    other.initialize()
    other.save_parameters(str(tmp_path / "r14.params"))
    Image.fromarray(photos()[0]).save(tmp_path / "china.png")
    with pytest.raises(UserError, match="does not fit model resnest_tiny"):
        main(["--model", "resnest_tiny", "--resume", str(tmp_path / "r14.params"),
              str(tmp_path / "china.png")])
    # From the command line: exit code 2 and one line on stderr, no traceback.
    proc = subprocess.run([sys.executable, PREDICT] + base + [str(tmp_path / "empty")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        f"error: folder {tmp_path / 'empty'} holds no image files (looked for "
        "jpg/png/bmp/tif/webp/gif/ppm at any depth); give another folder."]
