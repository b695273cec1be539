"""The weights store with fabricated .params files and a stubbed download."""
import hashlib
import os
import threading
import zipfile

import mxnet as mx
import numpy as np
import pytest

from resnest.gluon import UserError, get_model, store
from resnest.gluon.pretrained import PRETRAINED, PretrainedInfo


@pytest.fixture
def fake_weights(tmp_path, monkeypatch):
    """A registered-looking entry 'resnest14' whose sha1 is that of a file we make."""
    net = get_model("resnest14")
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    src = tmp_path / "src.params"
    net.save_parameters(str(src))
    sha1 = hashlib.sha1(src.read_bytes()).hexdigest()
    info = PretrainedInfo("resnest14", sha1, 224, 75.75, 92.70, 10.61)
    monkeypatch.setitem(PRETRAINED, "resnest14", info)
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RESNEST_MODEL_REPO", raising=False)
    return net, src, info


def _serve(monkeypatch, payload_for_url):
    """Replace the network: ``payload_for_url(url)`` returns bytes or raises."""
    calls = []

    def fetch(url, dst, timeout=60):
        calls.append(url)
        data = payload_for_url(url)
        with open(dst, "wb") as f:
            f.write(data)
    monkeypatch.setattr(store, "_fetch", fetch)
    return calls


def _zipped(path, name):
    out = path.parent / (name + ".zip")
    with zipfile.ZipFile(out, "w") as zf:
        zf.write(path, name)
    return out.read_bytes()


def test_store_root_follows_mxnet_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    assert store.store_root() == os.path.join(str(tmp_path), "models")
    assert store.store_root("/x/y") == "/x/y"


def test_urls_honour_mirrors(monkeypatch):
    monkeypatch.delenv("RESNEST_MODEL_REPO", raising=False)
    monkeypatch.setenv("MXNET_GLUON_REPO", "https://mirror.example/")
    urls = store.weight_urls("resnest50")
    assert urls[0] == "https://mirror.example/gluon/models/resnest50-bcfefe1d.params.zip"
    assert len(store.weight_urls("resnest50_fast_1s1x64d")) == 1     # authors' release only
    monkeypatch.setenv("RESNEST_MODEL_REPO", "https://private/models")
    assert store.weight_urls("resnest50") == ["https://private/models/resnest50-bcfefe1d.params.zip"]


def test_download_good_file_then_cached(fake_weights, monkeypatch):
    net, src, info = fake_weights
    calls = _serve(monkeypatch, lambda url: _zipped(src, info.file_name))
    loaded = get_model("resnest14", pretrained=True)
    path = os.path.join(store.store_root(), info.file_name)
    assert os.path.isfile(path) and len(calls) == 1
    x = mx.nd.random.uniform(shape=(1, 3, 32, 32))
    np.testing.assert_array_equal(loaded(x).asnumpy(), net(x).asnumpy())
    get_model("resnest14", pretrained=True)
    assert len(calls) == 1                                   # no second download
    assert not [f for f in os.listdir(store.store_root()) if f.startswith(".download")]


@pytest.mark.parametrize("bad", ["wrong", "truncated"])
def test_bad_download_is_never_kept(fake_weights, monkeypatch, bad):
    _, src, info = fake_weights
    data = src.read_bytes()
    payload = data[: len(data) // 2] if bad == "truncated" else data + b"x"
    _serve(monkeypatch, lambda url: payload)
    with pytest.raises(UserError, match=f"{info.file_name} \\(sha1 {info.sha1}\\)"):
        get_model("resnest14", pretrained=True)
    assert not os.path.exists(os.path.join(store.store_root(), info.file_name))


def test_offline_error_names_file_sha1_and_folder(fake_weights, monkeypatch):
    _, _, info = fake_weights

    def offline(url):
        raise OSError("Network is unreachable")
    _serve(monkeypatch, offline)
    with pytest.raises(UserError) as err:
        store.get_model_file("resnest14")
    msg = str(err.value)
    assert info.file_name in msg and info.sha1 in msg and store.store_root() in msg
    assert "is missing" in msg


def test_corrupt_file_in_store_is_replaced_not_loaded(fake_weights, monkeypatch):
    _, src, info = fake_weights
    os.makedirs(store.store_root())
    path = os.path.join(store.store_root(), info.file_name)
    with open(path, "wb") as f:
        f.write(b"garbage")
    calls = _serve(monkeypatch, lambda url: src.read_bytes())       # a bare .params works too
    assert store.get_model_file("resnest14") == path
    assert store.sha1_file(path) == info.sha1 and len(calls) == 1


def test_concurrent_callers_download_once(fake_weights, monkeypatch):
    _, src, info = fake_weights
    gate = threading.Event()

    def slow(url):
        gate.wait(5)
        return src.read_bytes()
    calls = _serve(monkeypatch, slow)
    paths, threads = [], [threading.Thread(target=lambda: paths.append(
        store.get_model_file("resnest14"))) for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert len(paths) == 4 and len(set(paths)) == 1 and len(calls) == 1


def test_weights_of_another_model_fail_with_one_sentence(tmp_path):
    other = get_model("resnest_tiny")
    other.initialize()
    other(mx.nd.zeros((1, 3, 32, 32)))
    path = str(tmp_path / "tiny.params")
    other.save_parameters(path)
    with pytest.raises(UserError, match="does not fit model resnest14: .*another model"):
        get_model("resnest14", pretrained=path)
    with pytest.raises(UserError, match="trained for 1000 classes, not 3; .*classes=1000"):
        get_model("resnest_tiny", classes=3, pretrained=path)


def test_corrupt_or_missing_local_file(tiny, tmp_path):
    tiny(mx.nd.zeros((1, 3, 32, 32)))
    good = tmp_path / "good.params"
    tiny.save_parameters(str(good))
    for name, data in [("truncated", good.read_bytes()[:5000]), ("text", b"hello\n" * 100)]:
        bad = tmp_path / f"{name}.params"
        bad.write_bytes(data)
        with pytest.raises(UserError, match="not a readable MXNet .params file"):
            get_model("resnest_tiny", classes=5, pretrained=str(bad))
    with pytest.raises(UserError, match="does not exist"):
        get_model("resnest_tiny", pretrained=str(tmp_path / "nope.params"))


def test_unknown_model_lists_known_ones():
    with pytest.raises(UserError, match="unknown model 'resnet9000'.*resnest50"):
        get_model("resnet9000")
    with pytest.raises(UserError, match="no published weights"):
        store.get_model_file("resnest_tiny")
