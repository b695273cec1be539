"""Our models against the authors' own PyTorch code (``resnest.torch`` of the resnest 0.0.5
wheel, run in .venv-torch), after conversion each way. Expected values come from their code:
deterministic weights made and saved by it with ``torch.save``, its logits in float64 and
float32, and files we write loaded the way their scripts load weights (``torch.load`` +
``load_state_dict(strict=True)``). Inputs 2 x 3 x 64 x 64."""
import mxnet as mx
import numpy as np
import pytest

from _torch import assert_close, gluon_weights, logits, torch_side
from resnest.gluon.convert import convert_file

CLASSES = 10
R14 = dict(layers=[1, 1, 1, 1], radix=2, groups=1, bottleneck_width=64, deep_stem=True,
           stem_width=32, avg_down=True, avd=True, avd_first=False)
# ours -> the authors' model (a function of resnest.torch, or their ResNet class's settings)
AUTHORS = [("resnest50", {"model": "resnest50"}),
           ("resnest50_fast_4s2x40d", {"model": "resnest50_fast_4s2x40d"}),
           ("resnest50_fast_1s4x24d", {"model": "resnest50_fast_1s4x24d"}),
           ("resnest14", {"build": R14})]
BORN_HERE = [("resnest50_fast_2s2x40d", {"model": "resnest50_fast_2s2x40d"}),
             ("resnest14", {"build": R14})]
TIMM_R14 = dict(layers=[1, 1, 1, 1], stem_type="deep", stem_width=32, avg_down=True,
                base_width=64, cardinality=1, block_args=dict(radix=2, avd=True, avd_first=False))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("authors")
    x = np.random.RandomState(1).uniform(-1, 1, (2, 3, 64, 64))
    np.savez(root / "x.npz", x=x)
    common = dict(impl="authors", classes=CLASSES, inputs=root / "x.npz")
    jobs = [dict(common, seed=20 + i, make=root / f"{ours}.pth", logits=root / f"{ours}.npz",
                 **spec) for i, (ours, spec) in enumerate(AUTHORS)]
    # dilated (output stride 8): the authors' network, and timm's with the same weights
    jobs.append(dict(common, seed=30, make=root / "dilated.pth", logits=root / "dilated.npz",
                     build=dict(R14, dilated=True)))
    jobs.append(dict(impl="timm", classes=CLASSES, inputs=root / "x.npz",
                     build=dict(TIMM_R14, output_stride=8), load=root / "dilated.pth",
                     logits=root / "dilated.timm.npz"))
    # Weights born here, converted to their layout, are loaded by their code in the same torch
    # run (one start of torch and timm for the module).
    for i, (ours, spec) in enumerate(BORN_HERE):
        gluon_weights(ours, CLASSES, root / f"{ours}.born.params", seed=40 + i)
        convert_file(str(root / f"{ours}.born.params"), str(root / f"{ours}.born.pth"), "torch",
                     model=ours)
        jobs.append(dict(common, load=root / f"{ours}.born.pth", logits=root / f"{ours}.born.npz",
                         **spec))
    torch_side(jobs, root)
    return root, x


@pytest.mark.parametrize("ours", [m for m, _ in AUTHORS])
def test_their_weights_give_their_logits_here(work, ours, tmp_path):
    root, x = work
    done = convert_file(str(root / f"{ours}.pth"), str(tmp_path / "g.params"), "gluon",
                        model=ours)
    assert done["source"] in ("torch", "timm")          # the same names
    want = np.load(root / f"{ours}.npz")
    l64, l32 = logits(ours, tmp_path / "g.params", x, CLASSES)
    assert_close(l64, want["logits64"], f"authors' {ours} -> ours, float64")
    assert_close(l32, want["logits32"], f"authors' {ours} -> ours, float32", f64=False)
    # Gluon -> the authors' torch -> Gluon, and their file -> Gluon -> theirs: equal arrays
    convert_file(str(tmp_path / "g.params"), str(tmp_path / "t.pth"), "torch")
    convert_file(str(tmp_path / "t.pth"), str(tmp_path / "g2.params"), "gluon", model=ours)
    a, b = mx.nd.load(str(tmp_path / "g.params")), mx.nd.load(str(tmp_path / "g2.params"))
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k].asnumpy(), b[k].asnumpy())
                                          for k in a)
    from resnest.gluon.convert.formats import read_arrays
    theirs = read_arrays(str(root / f"{ours}.pth"))[1]
    again = read_arrays(str(tmp_path / "t.pth"))[1]
    assert list(theirs) == list(again)                 # their order, BN counters included
    assert all(theirs[k].dtype == again[k].dtype and np.array_equal(theirs[k], again[k])
               for k in theirs)


@pytest.mark.parametrize("ours", [m for m, _ in BORN_HERE])
def test_our_weights_give_our_logits_in_their_code(work, ours):
    root, x = work
    l64, l32 = logits(ours, root / f"{ours}.born.params", x, CLASSES)
    got = np.load(root / f"{ours}.born.npz")
    assert_close(got["logits64"], l64, f"{ours} -> authors', float64")
    assert_close(got["logits32"], l32, f"{ours} -> authors', float32", f64=False)


def test_dilated_networks_agree_with_the_authors_not_with_timm(work):
    """Output stride 8: their dilated network is ours (stride-1 avd pool and 1x1 shortcut
    pool in the first dilated block); timm's ``output_stride=8`` drops that pool and pools the
    shortcut 2x2, so the same weights give other logits."""
    root, x = work
    l64, _ = logits("resnest14", root / "dilated.pth", x, CLASSES, dilated=True)
    assert_close(l64, np.load(root / "dilated.npz")["logits64"], "dilated, float64")
    timm = np.load(root / "dilated.timm.npz")["logits64"]
    assert np.abs(timm - l64).max() > 1e-3 * np.abs(l64).max()
