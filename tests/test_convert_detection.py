"""Our Detectron2 and MMDetection layouts against those projects' own parameter names. Neither
installs here (Detectron2-ResNeSt is not on the package index; MMDetection needs mmcv's
compiled operators): tests/fixtures/detection_names/*.json hold the names and shapes their
backbones have when their real model code builds them (tools/make_detection_names.py, run in
.venv-torch on the zhanghang1989/detectron2-ResNeSt source at 54ec876 and on the mmdet 3.3.0
wheel). These layouts are checked by names and shapes only, not by logits."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

from conftest import FIXTURES
from resnest.gluon import get_model
from resnest.gluon.convert import LAYOUTS, convert_file, read_ours
from resnest.gluon.convert.formats import read_arrays
from resnest.gluon.utils.errors import UserError

DEPTHS = {"50": "resnest50", "101": "resnest101", "200": "resnest200", "269": "resnest269"}


def _fixture(layout):
    with open(os.path.join(FIXTURES, "detection_names", f"{layout}.json")) as f:
        return json.load(f)["depths"]


def _ours(model):
    net = get_model(model, classes=1)
    return {k: tuple(p.shape) for k, p in net._collect_params_with_prefix().items()
            if not k.startswith("fc.")}


CASES = [(layout, depth) for layout in ("detectron2", "mmdet") for depth in _fixture(layout)]


@pytest.mark.parametrize("layout,depth", CASES)
def test_every_name_maps_both_ways(layout, depth):
    theirs = {k: tuple(v) for k, v in _fixture(layout)[depth].items()}
    mapping = LAYOUTS[layout]
    ours = _ours(DEPTHS[depth])
    renamed = {mapping.from_ours(k): v for k, v in ours.items()}
    counters = {k for k in theirs if k.endswith(".num_batches_tracked")}
    assert None not in renamed
    assert {k: v for k, v in theirs.items() if k not in counters} == renamed
    assert bool(counters) == mapping.counter
    back = {mapping.to_ours(k) for k in theirs}
    assert back - {""} == set(ours)


def test_a_file_goes_to_detectron2_and_mmdet_and_back(tmp_path):
    mx.random.seed(5)
    net = get_model("resnest50", classes=3)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 64, 64)))
    net.save_parameters(str(tmp_path / "r50.params"))
    for layout in ("detectron2", "mmdet"):
        done = convert_file(str(tmp_path / "r50.params"), str(tmp_path / f"{layout}.pth"), layout)
        assert sorted(done["dropped"]) == ["fc.bias", "fc.weight"]   # a backbone: no classifier
        obj = read_arrays(str(tmp_path / f"{layout}.pth"))[1]
        state = obj["model"] if layout == "detectron2" else obj["state_dict"]
        assert sorted(state) == sorted(_fixture(layout)["50"])
        if layout == "detectron2":
            assert obj["matching_heuristics"] is True and "__author__" in obj
        arrays, _, source = read_ours(str(tmp_path / f"{layout}.pth"))
        assert source == layout
        convert_file(str(tmp_path / f"{layout}.pth"), str(tmp_path / f"{layout}.params"), "gluon")
        backbone = get_model("resnest50", features_only=True,
                             pretrained=str(tmp_path / f"{layout}.params"))
        original = net._collect_params_with_prefix()
        for k, p in backbone._collect_params_with_prefix().items():
            np.testing.assert_array_equal(p.data().asnumpy(), original[k].data().asnumpy())


@pytest.mark.parametrize("model,layout,why", [
    ("resnest14", "detectron2", "depths 50, 101, 200, 269"),
    ("resnest269", "mmdet", "depths 50, 101, 152, 200"),
    ("resnest50_fast_2s1x64d", "mmdet", "avd pool before the split-attention conv"),
    ("resnest50_fast_1s2x40d", "detectron2", "radix 1")])
def test_what_they_cannot_build_is_refused_in_one_sentence(tmp_path, model, layout, why):
    net = get_model(model, classes=2)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(tmp_path / "w.params"))
    with pytest.raises(UserError, match=why) as err:
        convert_file(str(tmp_path / "w.params"), str(tmp_path / "out.pth"), layout, model=model)
    assert str(err.value).count(". ") == 0 and str(err.value).endswith("nothing was written.")
    assert sorted(os.listdir(tmp_path)) == ["w.params"]
