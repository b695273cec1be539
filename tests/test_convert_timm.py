"""Our models against timm's, after conversion each way: all eight timm ResNeSt models
(resnest14d, 26d: ports of the Gluon weights; 50d, 101e, 200e, 269e, 50d_4s2x40d,
50d_1s4x24d: the authors' PyTorch weights). Expected values come from timm itself (timm 1.0.31
in .venv-torch): deterministic weights made and saved by timm/torch (no download), logits in
float64 and float32 computed by timm, files we write loaded by ``timm.models.load_checkpoint
(strict=True)``. Inputs 2 x 3 x 64 x 64."""

import mxnet as mx
import numpy as np
import pytest

from _torch import assert_close, gluon_weights, logits, torch_side
from resnest.gluon.convert import convert_file
from resnest.gluon.store import read_params

CLASSES = 10
TIMM = [("resnest14", "resnest14d"), ("resnest26", "resnest26d"), ("resnest50", "resnest50d"),
        ("resnest101", "resnest101e"), ("resnest200", "resnest200e"),
        ("resnest269", "resnest269e"), ("resnest50_fast_4s2x40d", "resnest50d_4s2x40d"),
        ("resnest50_fast_1s4x24d", "resnest50d_1s4x24d")]
EXT = {theirs: ("safetensors" if i % 2 else "pth") for i, (_, theirs) in enumerate(TIMM)}
OTHER = {"pth": "safetensors", "safetensors": "pth"}
# Born on our side: models whose weights start here, one of timm's and our narrow test model
# (timm's generic ResNet class with the same settings).
OURS = [("resnest50_fast_1s4x24d", {"model": "resnest50d_1s4x24d"}),
        ("resnest_tiny", {"build": dict(layers=[1, 1, 1, 1], stem_type="deep", stem_width=8,
                                        avg_down=True, base_width=64, cardinality=2,
                                        channels=(8, 16, 32, 64),
                                        block_args=dict(radix=2, avd=True, avd_first=False))})]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """timm's deterministic weights and logits for the eight models, their conversion to our
    layout, and back to timm's (with timm's logits on those files), in two torch runs."""
    root = tmp_path_factory.mktemp("timm")
    x = np.random.RandomState(0).uniform(-1, 1, (2, 3, 64, 64))
    np.savez(root / "x.npz", x=x)
    torch_side([{"impl": "timm", "model": theirs, "classes": CLASSES, "seed": i,
                 "make": root / f"{theirs}.{EXT[theirs]}", "inputs": root / "x.npz",
                 "logits": root / f"{theirs}.timm.npz"} for i, (_, theirs) in enumerate(TIMM)],
               root)
    done, jobs = {}, []
    for ours, theirs in TIMM:
        done[ours] = convert_file(str(root / f"{theirs}.{EXT[theirs]}"),
                                  str(root / f"{ours}.params"), "gluon")
        back = root / f"{theirs}.back.{OTHER[EXT[theirs]]}"
        convert_file(str(root / f"{ours}.params"), str(back), "timm")
        jobs.append({"impl": "timm", "model": theirs, "classes": CLASSES, "load": back,
                     "inputs": root / "x.npz", "logits": root / f"{theirs}.back.npz"})
    for i, (ours, build) in enumerate(OURS):
        gluon_weights(ours, CLASSES, root / f"{ours}.born.params", seed=10 + i)
        convert_file(str(root / f"{ours}.born.params"), str(root / f"{ours}.born.pth"), "timm")
        jobs.append(dict(build, impl="timm", classes=CLASSES, load=root / f"{ours}.born.pth",
                         inputs=root / "x.npz", logits=root / f"{ours}.born.npz"))
    torch_side(jobs, root)
    return root, x, done


_OURS_LOGITS = {}


def _ours(work, model, path):
    """Our logits with the weights of ``path`` (once per file)."""
    key = (model, str(path))
    if key not in _OURS_LOGITS:
        _OURS_LOGITS[key] = logits(model, path, work[1], CLASSES)
    return _OURS_LOGITS[key]


def _timm_file(root, theirs):
    return root / f"{theirs}.{EXT[theirs]}"


@pytest.mark.parametrize("ours,theirs", TIMM)
def test_timm_weights_give_timm_logits_here(work, ours, theirs):
    root, _, done = work
    assert done[ours]["model"] == ours and done[ours]["source"] == "timm"
    want = np.load(root / f"{theirs}.timm.npz")
    # timm's file loaded as it is: get_model(ours, pretrained="resnest50d.pth")
    l64, l32 = _ours(work, ours, _timm_file(root, theirs))
    assert_close(l64, want["logits64"], f"{theirs} -> {ours}, float64")
    assert_close(l32, want["logits32"], f"{theirs} -> {ours}, float32", f64=False)
    # and converted to a .params: the very same arrays
    direct, converted = read_params(str(_timm_file(root, theirs))), \
        mx.nd.load(str(root / f"{ours}.params"))
    assert sorted(direct) == sorted(converted)
    assert all(np.array_equal(direct[k].asnumpy(), converted[k].asnumpy()) for k in direct)


@pytest.mark.parametrize("ours,theirs", TIMM)
def test_our_weights_give_our_logits_in_timm(work, ours, theirs):
    root = work[0]
    l64, l32 = _ours(work, ours, _timm_file(root, theirs))     # = the .params (shown above)
    got = np.load(root / f"{theirs}.back.npz")
    assert_close(got["logits64"], l64, f"{ours} -> {theirs}, float64")
    assert_close(got["logits32"], l32, f"{ours} -> {theirs}, float32", f64=False)


@pytest.mark.parametrize("ours,theirs", TIMM)
def test_round_trips_are_lossless(work, ours, theirs, tmp_path):
    """timm -> Gluon -> timm and Gluon -> timm -> Gluon give back equal arrays (and timm's BN
    counters)."""
    from resnest.gluon.convert.formats import read_arrays
    from resnest.gluon.convert.translate import _state_dict
    root = work[0]

    def arrays(path):
        fmt, payload = read_arrays(str(path))
        return payload[0] if fmt != "pth" else _state_dict(payload, path)[0]
    first = arrays(root / f"{theirs}.{EXT[theirs]}")
    again = arrays(root / f"{theirs}.back.{OTHER[EXT[theirs]]}")
    assert sorted(first) == sorted(again)
    assert all(first[k].dtype == again[k].dtype and np.array_equal(first[k], again[k])
               for k in first)
    convert_file(str(root / f"{theirs}.back.{OTHER[EXT[theirs]]}"), str(tmp_path / "g.params"),
                 "gluon")
    gluon, twice = mx.nd.load(str(root / f"{ours}.params")), mx.nd.load(str(tmp_path / "g.params"))
    assert sorted(gluon) == sorted(twice)
    assert all(np.array_equal(gluon[k].asnumpy(), twice[k].asnumpy()) for k in gluon)


@pytest.mark.parametrize("ours", [m for m, _ in OURS])
def test_weights_born_here_give_our_logits_in_timm(work, ours):
    root = work[0]
    l64, l32 = _ours(work, ours, root / f"{ours}.born.params")
    got = np.load(root / f"{ours}.born.npz")
    assert_close(got["logits64"], l64, f"{ours} -> timm, float64")
    assert_close(got["logits32"], l32, f"{ours} -> timm, float32", f64=False)
