"""scripts/gluon/convert.py end to end, and a fine-tuned checkpoint leaving MXNet: timm's
weights -> train.py --pretrained-params x.safetensors on the real digits -> the checkpoint with
its class names -> timm (loaded by timm.models.load_checkpoint in .venv-torch; its logits and
the class names in the file are compared with ours and with the training folders')."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from _torch import assert_close, logits, torch_side
from conftest import REPO, digits_subset
from resnest.gluon import get_model

PY = sys.executable
CONVERT = os.path.join(REPO, "scripts", "gluon", "convert.py")
TRAIN = os.path.join(REPO, "scripts", "gluon", "train.py")
TINY_TIMM = dict(layers=[1, 1, 1, 1], stem_type="deep", stem_width=8, avg_down=True,
                 base_width=64, cardinality=2, channels=(8, 16, 32, 64),
                 block_args=dict(radix=2, avd=True, avd_first=False))


def _run(script, *args):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([PY, script, *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture
def r14(tmp_path):
    mx.random.seed(2)
    net = get_model("resnest14", classes=4)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(tmp_path / "r14.params"))
    return tmp_path / "r14.params"


def test_convert_writes_and_refuses_in_one_sentence(r14, tmp_path):
    out = tmp_path / "r14.safetensors"
    done = _run(CONVERT, r14, out, "--to", "timm")
    assert done.returncode == 0, done.stderr
    assert "resnest14" in done.stdout and "152 arrays in the timm layout" in done.stdout
    again = _run(CONVERT, r14, out, "--to", "timm")           # never overwritten silently
    assert again.returncode == 2 and "exists; pass --force" in again.stderr
    assert _run(CONVERT, r14, out, "--to", "timm", "--force").returncode == 0
    wrong = _run(CONVERT, out, tmp_path / "x.params", "--to", "gluon", "--model", "resnest26")
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1
    assert wrong.stderr.startswith("error: ") and "does not hold resnest26 weights" in wrong.stderr
    assert "Traceback" not in wrong.stderr and not (tmp_path / "x.params").exists()


def test_a_file_of_another_architecture_is_one_sentence_and_no_file(tmp_path):
    from resnest.gluon.convert.formats import write_arrays
    other = {"conv1.weight": np.zeros((64, 3, 7, 7), np.float32),      # torchvision's resnet
             "bn1.weight": np.ones(64, np.float32), "layer1.0.conv2.weight":
             np.zeros((64, 64, 3, 3), np.float32), "layer1.0.bn2.weight": np.ones(64, np.float32)}
    write_arrays(str(tmp_path / "resnet50.pth"), "pth", other)
    done = _run(CONVERT, tmp_path / "resnet50.pth", tmp_path / "out.params", "--to", "gluon")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "not ResNeSt names of any layout" in done.stderr and "layer1.0.bn2.weight" in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["resnet50.pth"]
    with pytest.raises(Exception, match="not ResNeSt names"):
        get_model("resnest50", pretrained=str(tmp_path / "resnet50.pth"))


def test_a_finetuned_checkpoint_reaches_timm_with_its_class_names(digits, tmp_path):
    digits_subset(digits, tmp_path / "digits", classes=range(5, 10), train_per_class=20)
    x = np.random.RandomState(4).uniform(-1, 1, (2, 3, 32, 32))
    np.savez(tmp_path / "x.npz", x=x)
    torch_side([{"impl": "timm", "build": TINY_TIMM, "classes": 10, "seed": 3,
                 "make": tmp_path / "timm_tiny.safetensors"}], tmp_path)
    save = tmp_path / "run"
    done = _run(TRAIN, "--model", "resnest_tiny", "--pretrained-params",
                tmp_path / "timm_tiny.safetensors", "--train-dir", tmp_path / "digits" / "train",
                "--val-dir", tmp_path / "digits" / "val", "--save-dir", save,
                "--num-epochs", "2", "--batch-size", "20", "--lr", "0.02", "--input-size", "32",
                "--crop-ratio", "1.0", "--no-progress", "--data-nthreads", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "started from" in done.stdout + done.stderr
    ckpt = save / "imagenet-resnest_tiny-1.params"
    with open(save / "imagenet-resnest_tiny-1.json") as f:
        names = json.load(f)["class_names"]
    assert names == ["5", "6", "7", "8", "9"]
    for ext in ("safetensors", "pth"):
        out = _run(CONVERT, ckpt, tmp_path / f"ft.{ext}", "--to", "timm")
        assert out.returncode == 0 and "class names: 5 kept" in out.stdout, out.stderr
    torch_side([{"impl": "timm", "build": TINY_TIMM, "classes": 5, "load": tmp_path / f"ft.{ext}",
                 "inputs": tmp_path / "x.npz", "logits": tmp_path / f"ft.{ext}.npz"}
                for ext in ("safetensors", "pth")] +
               [{"import": tmp_path / f"ft.{ext}", "npz": tmp_path / f"ft.{ext}.arrays.npz",
                 "json": tmp_path / f"ft.{ext}.json"} for ext in ("safetensors", "pth")],
               tmp_path)
    l64, l32 = logits("resnest_tiny", ckpt, x, 5)
    for ext in ("safetensors", "pth"):
        got = np.load(tmp_path / f"ft.{ext}.npz")
        assert_close(got["logits64"], l64, f"fine-tuned -> timm ({ext}), float64")
        assert_close(got["logits32"], l32, f"fine-tuned -> timm ({ext}), float32", f64=False)
        meta = json.loads((tmp_path / f"ft.{ext}.json").read_text())
        kept = json.loads(meta["class_names"]) if ext == "safetensors" else meta["class_names"]
        assert kept == names
    # and back: the timm file is a starting point here again, names included, and a .params
    # converted from it has them in its JSON
    from resnest.gluon.checkpoint import record_beside
    from resnest.gluon.inference.load import load_model
    loaded = load_model("resnest_tiny", str(tmp_path / "ft.safetensors"))
    assert loaded.class_names == names and loaded.classes == 5
    assert _run(CONVERT, tmp_path / "ft.pth", tmp_path / "back.params", "--to", "gluon",
                "--model", "resnest_tiny").returncode == 0
    record = record_beside(str(tmp_path / "back.params"))
    assert record.class_names == names and record.converted_from.endswith("ft.pth")
    assert load_model("resnest_tiny", str(tmp_path / "back.params")).class_names == names


def _readme_lines(page=("docs", "convert.md")):
    """The Python block after the ``timm-snippet`` marker of docs/convert.md (or ``page``)."""
    with open(os.path.join(REPO, *page), encoding="utf-8") as f:
        text = f.read()
    block = text.split("<!-- timm-snippet -->", 1)[1].split("```python\n", 1)[1]
    return block.split("```", 1)[0]


def test_the_readme_shows_the_lines_that_are_run():
    """The README's timm lines are the tested ones of docs/convert.md, blank lines aside."""
    def lines(text):
        return [line for line in text.splitlines() if line.strip()]
    assert lines(_readme_lines(("README.md",))) == lines(_readme_lines())


def test_the_documented_lines_load_our_checkpoint_in_timm_and_predict(tmp_path):
    """A checkpoint as train.py writes it (write_checkpoint: .params, .states, the record with
    the class names) -> convert.py --to timm -> the lines of docs/convert.md, run as written
    (model name, class count and path filled in) by timm."""
    from resnest.gluon.checkpoint import CheckpointRecord, write_checkpoint
    names = ["cat", "dog", "ëlk", "owl"]
    mx.random.seed(6)
    net = get_model("resnest14", classes=len(names))
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 64, 64)))
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    paths = write_checkpoint(str(tmp_path), CheckpointRecord("resnest14", 0, class_names=names),
                             net.save_parameters, trainer.save_states)
    model = tmp_path / "model.safetensors"
    assert _run(CONVERT, paths["params"], model, "--to", "timm").returncode == 0
    lines = _readme_lines()
    assert lines.count("\n") <= 6 and 'timm.create_model("resnest50d", num_classes=10' in lines
    code = (lines.replace('"resnest50d", num_classes=10', f'"resnest14d", num_classes={len(names)}')
            .replace('"model.safetensors"', json.dumps(str(model))))
    (tmp_path / "snippet.py").write_text(code)
    x = np.random.RandomState(8).uniform(-1, 1, (1, 3, 64, 64))
    np.savez(tmp_path / "x.npz", x=x)
    torch_side([{"snippet": tmp_path / "snippet.py", "inputs": tmp_path / "x.npz",
                 "out": tmp_path / "out.json"}], tmp_path)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["names"] == names
    ours = net(mx.nd.array(x)).asnumpy()[0]
    assert out["printed"].strip() == names[int(ours.argmax())]
