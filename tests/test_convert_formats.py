"""The file formats without torch: our .pth and .safetensors are read by torch itself
(torch.load(weights_only=True), safetensors.torch) in .venv-torch, and what torch writes (zip
and legacy .pth, safetensors) is read here. Expected values: the arrays the test made, as torch
returns them."""
import json
import os
import zipfile

import numpy as np
import pytest

from _torch import torch_side
from resnest.gluon.convert.formats import format_of, read_arrays, write_arrays
from resnest.gluon.utils.errors import UserError


def _arrays():
    rng = np.random.RandomState(3)
    return {"conv.weight": rng.randn(4, 3, 3, 3).astype(np.float32),
            "mat": rng.randn(3, 5),                                   # float64, not square
            "counter": np.array(7, dtype=np.int64),                  # a 0-d tensor
            "half": rng.randn(6).astype(np.float16),
            "ids": np.arange(5, dtype=np.int32), "mask": np.array([True, False, True]),
            "bytes": np.arange(4, dtype=np.uint8), "empty": np.zeros((0, 3), np.float32)}


def _same(got, want):
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        assert got[k].shape == want[k].shape, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


NAMES = ["tench", "goldfish", "ëü"]
EXACT = {"bf": np.array([1.5, -2.25, 3.0, 0.0078125], np.float32)}      # exact in bfloat16


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    """One torch run for both directions: it reads the .pth and .safetensors we wrote (ours/)
    and writes zip and legacy .pth and a .safetensors of known arrays (theirs/)."""
    root = tmp_path_factory.mktemp("formats")
    ours, theirs = root / "ours", root / "theirs"
    ours.mkdir()
    theirs.mkdir()
    arrays = _arrays()
    write_arrays(str(ours / "a.pth"), "pth",
                 {"state_dict": arrays, "class_names": NAMES, "arch": "resnest50d"})
    write_arrays(str(ours / "a.safetensors"), "safetensors",
                 (arrays, {"class_names": json.dumps(NAMES), "format": "pt"}))
    jobs = [{"import": ours / f"a.{ext}", "npz": ours / f"{ext}.npz",
             "json": ours / f"{ext}.json"} for ext in ("pth", "safetensors")]
    np.savez(theirs / "in.npz", **arrays, **EXACT)
    jobs.append({"export": theirs / "in.npz", "pth": theirs / "z.pth",
                 "legacy": theirs / "l.pth", "safetensors": theirs / "s.safetensors",
                 "metadata": {"class_names": '["a"]'}, "bf16": ["bf"], "views": ["mat"]})
    torch_side(jobs, root)
    return ours, theirs


def test_our_files_are_what_torch_reads(torch_run):
    tmp_path = torch_run[0]
    arrays = _arrays()
    for ext in ("pth", "safetensors"):
        _same(dict(np.load(tmp_path / f"{ext}.npz")), arrays)
    assert json.loads((tmp_path / "pth.json").read_text()) == {"class_names": NAMES,
                                                              "arch": "resnest50d"}
    meta = json.loads((tmp_path / "safetensors.json").read_text())
    assert json.loads(meta["class_names"]) == NAMES and meta["format"] == "pt"


def test_torch_files_are_read_here(torch_run):
    tmp_path = torch_run[1]
    arrays = _arrays()
    want = dict(arrays, **EXACT)
    for k in ("mat",):                           # the views torch saved beside their base
        want[k + ".T"], want[k + ".row1"] = arrays[k].T, arrays[k][1]
    assert zipfile.is_zipfile(tmp_path / "z.pth") and not zipfile.is_zipfile(tmp_path / "l.pth")
    for name in ("z.pth", "l.pth"):
        fmt, obj = read_arrays(str(tmp_path / name))
        assert fmt == "pth"
        _same(dict(obj), want)
    fmt, (got, meta) = read_arrays(str(tmp_path / "s.safetensors"))
    assert fmt == "safetensors" and meta == {"class_names": '["a"]'}
    _same(got, {k: v for k, v in want.items() if not k.endswith((".T", ".row1"))})


def test_format_is_read_from_the_content(tmp_path):
    arrays = {"w": np.ones((2, 2), np.float32)}
    write_arrays(str(tmp_path / "a.params"), "params", (arrays, {}))
    write_arrays(str(tmp_path / "a.pth"), "pth", arrays)
    write_arrays(str(tmp_path / "a.safetensors"), "safetensors", (arrays, {}))
    for src, fmt in (("a.params", "params"), ("a.pth", "pth"), ("a.safetensors", "safetensors")):
        renamed = tmp_path / ("weights-" + fmt + ".bin")
        os.rename(tmp_path / src, renamed)
        assert format_of(str(renamed)) == fmt
        got = read_arrays(str(renamed))[1]
        np.testing.assert_array_equal((got[0] if isinstance(got, tuple) else got)["w"],
                                      arrays["w"])


@pytest.mark.parametrize("ext", ["pth", "safetensors"])
def test_a_damaged_file_is_one_sentence(tmp_path, ext):
    good = tmp_path / f"good.{ext}"
    big = {"w": np.arange(4096, dtype=np.float32)}
    write_arrays(str(good), ext, big if ext == "pth" else (big, {}))
    bad = tmp_path / f"bad.{ext}"
    bad.write_bytes(good.read_bytes()[:len(good.read_bytes()) - 5000])
    with pytest.raises(UserError, match=rf"weights file .*bad.{ext} .*(truncated|corrupt)"):
        read_arrays(str(bad))
    (tmp_path / "text.pth").write_bytes(b"hello\n" * 100)
    with pytest.raises(UserError, match="neither an MXNet .params, a PyTorch .pth nor"):
        read_arrays(str(tmp_path / "text.pth"))


def test_a_pickle_that_would_run_code_runs_none(tmp_path):
    """torch.load (without weights_only) would call os.system here; our reader only records
    the name."""
    marker = tmp_path / "ran"
    payload = (b"\x80\x02cos\nsystem\nq\x00X" + len(f"touch {marker}").to_bytes(4, "little")
               + f"touch {marker}".encode() + b"\x85R.")
    with zipfile.ZipFile(tmp_path / "evil.pth", "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")
    from resnest.gluon.convert import read_ours
    with pytest.raises(UserError, match="holds no state_dict"):
        read_ours(str(tmp_path / "evil.pth"))
    assert not marker.exists()
