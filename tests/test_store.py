"""The weights store against real HTTP servers laid out like the published buckets.

The bucket layouts are not restated here: each server is laid out by the path format of the
code that reads that bucket (GluonCV's ``model_store``, the authors' ``resnest.gluon.
model_store``), and where possible that code itself downloads from the same server, so the
test fails if our store asks for any other address than theirs.
"""
import dataclasses
import functools
import hashlib
import http.server
import os
import threading
import zipfile

import mxnet as mx
import numpy as np
import pytest

from conftest import authors_package
from resnest.gluon import UserError, get_model, store
from resnest.gluon.pretrained import PRETRAINED, PretrainedInfo


class Server:
    """An HTTP server on 127.0.0.1 serving ``root``; records every path asked for."""

    def __init__(self, root):
        self.root, self.requests = str(root), []
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_request(self, *args):             # once per request, any status
                requests.append(self.path)

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=self.root)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def put(self, rel_path, data):
        path = os.path.join(self.root, rel_path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "www")
    yield srv
    srv.close()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty store; no mirror; repositories unset."""
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "home"))
    for var in ("RESNEST_MODEL_REPO", "MXNET_GLUON_REPO", "ENCODING_REPO"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _weights(tmp_path):
    """A real (small) .params file: resnest_tiny's."""
    net = get_model("resnest_tiny")
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    path = tmp_path / "weights.params"
    net.save_parameters(str(path))
    return net, path


def _publish(monkeypatch, name, params_path, hosts=None):
    """Pretend ``name``'s published file is ``params_path``: patch its sha1 into our table and
    return ``(stem, zip bytes holding stem.params)``, the published packaging."""
    data = params_path.read_bytes()
    sha1 = hashlib.sha1(data).hexdigest()
    old = PRETRAINED.get(name) or PretrainedInfo(name, "0" * 40, ("gluoncv",))
    info = dataclasses.replace(old, sha1=sha1, hosts=hosts or old.hosts)
    monkeypatch.setitem(PRETRAINED, name, info)
    zpath = params_path.parent / (info.stem + ".zip")
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr(info.stem + ".params", data)
    return info, zpath.read_bytes()


def _gluoncv_store():
    from gluoncv.model_zoo import model_store
    return model_store


def _gluoncv_path(stem):
    return _gluoncv_store()._url_format.format(repo_url="", file_name=stem)


def _authors_path(stem):
    return authors_package('model_store')._url_format.format(repo_url="", file_name=stem)


def test_default_repositories_and_variables_are_the_published_ones():
    import inspect
    gcv = _gluoncv_store()
    variable, default, _ = store.HOSTS["gluoncv"]
    assert default == gcv.apache_repo_url
    assert f"'{variable}'" in inspect.getsource(gcv.get_model_file)
    authors = authors_package('model_store')
    variable, default, _ = store.HOSTS["authors"]
    assert default == authors.encoding_repo_url
    assert f"'{variable}'" in inspect.getsource(authors.get_model_file)
    # Who hosts what: each store's own table of models.
    for name, info in PRETRAINED.items():
        published = info.published_name or name
        assert ("gluoncv" in info.hosts) == (published in gcv._model_sha1), name
        assert ("authors" in info.hosts) == (published in authors._model_sha1), name
        for table in (gcv._model_sha1, authors._model_sha1):
            assert table.get(published, info.sha1) == info.sha1, name


def test_gluoncv_bucket_layout(env, server, monkeypatch):
    _, src = _weights(env)
    info, zipped = _publish(monkeypatch, "resnest14", src)
    server.put("gcv/" + _gluoncv_path(info.stem), zipped)
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url + "gcv")      # no trailing slash
    path = store.get_model_file("resnest14")
    assert store.sha1_file(path) == info.sha1 and os.path.basename(path) == info.file_name
    ours = list(server.requests)
    assert ours == ["/gcv/" + _gluoncv_path(info.stem)]
    # GluonCV's own store (which reads MXNET_HOME too: our file is where it looks for it),
    # asked for the same file from an empty home, asks the same address.
    gcv = _gluoncv_store()
    monkeypatch.setitem(gcv._model_sha1, "resnest14", info.sha1)
    assert gcv.get_model_file("resnest14") == path and server.requests == ours
    monkeypatch.setenv("MXNET_HOME", str(env / "gluoncv-home"))
    gcv.get_model_file("resnest14")
    assert server.requests[len(ours):] == ours


def test_authors_store_layout_for_a_fast_variant(env, server, monkeypatch):
    _, src = _weights(env)
    name = "resnest50_fast_1s1x64d"
    info, zipped = _publish(monkeypatch, name, src)
    assert info.hosts == ("authors",)
    server.put("enc/" + _authors_path(info.stem), zipped)
    monkeypatch.setenv("ENCODING_REPO", server.url + "enc/")
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url + "gcv/")     # must not be asked
    path = store.get_model_file(name)
    assert store.sha1_file(path) == info.sha1
    ours = list(server.requests)
    assert ours == ["/enc/" + _authors_path(info.stem)]
    authors = authors_package('model_store')
    monkeypatch.setitem(authors._model_sha1, name, info.sha1)
    authors.get_model_file(name, root=str(env / "authors-root"))
    assert server.requests[len(ours):] == ours


def test_falls_back_to_the_authors_store(env, server, monkeypatch):
    _, src = _weights(env)
    info, zipped = _publish(monkeypatch, "resnest50", src)
    server.put("enc/" + _authors_path(info.stem), zipped)          # GluonCV's bucket lacks it
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url + "gcv/")
    monkeypatch.setenv("ENCODING_REPO", server.url + "enc/")
    assert store.sha1_file(store.get_model_file("resnest50")) == info.sha1
    assert server.requests == ["/gcv/" + _gluoncv_path(info.stem),
                               "/enc/" + _authors_path(info.stem)]


def test_private_mirror_is_used_alone(env, server, monkeypatch):
    _, src = _weights(env)
    info, zipped = _publish(monkeypatch, "resnest50", src)
    server.put("mirror/" + info.stem + ".zip", zipped)
    monkeypatch.setenv("RESNEST_MODEL_REPO", server.url + "mirror")
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url + "gcv/")
    assert store.sha1_file(store.get_model_file("resnest50")) == info.sha1
    assert server.requests == [f"/mirror/{info.stem}.zip"]


def test_pretrained_true_loads_the_download_then_uses_the_cache(env, server, monkeypatch):
    net, src = _weights(env)
    info, zipped = _publish(monkeypatch, "resnest_tiny", src, hosts=("gluoncv",))
    server.put("gcv/" + _gluoncv_path(info.stem), zipped)
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url + "gcv/")
    loaded = get_model("resnest_tiny", pretrained=True)
    x = mx.nd.random.uniform(shape=(1, 3, 32, 32))
    np.testing.assert_array_equal(loaded(x).asnumpy(), net(x).asnumpy())
    get_model("resnest_tiny", pretrained=True)
    assert len(server.requests) == 1                                  # no second download
    assert sorted(os.listdir(store.store_root())) == [info.file_name, info.file_name + ".lock"]


def test_root_wins_over_mxnet_home(env, server, monkeypatch):
    """``root=`` is where the file goes and is read from, with the file name GluonCV's
    get_model_file(root=) looks for there; $MXNET_HOME's folder stays untouched. (GluonCV lets a
    set $MXNET_HOME override an explicit root; ours does not: the argument is the user's latest
    word.)"""
    net, src = _weights(env)
    info, zipped = _publish(monkeypatch, "resnest_tiny", src, hosts=("gluoncv",))
    server.put("gcv/" + _gluoncv_path(info.stem), zipped)
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url + "gcv/")
    root = env / "my-weights"
    loaded = get_model("resnest_tiny", pretrained=True, root=str(root))
    x = mx.nd.random.uniform(shape=(1, 3, 32, 32))
    np.testing.assert_array_equal(loaded(x).asnumpy(), net(x).asnumpy())
    assert (root / info.file_name).is_file()
    assert not (env / "home" / "models" / info.file_name).exists()
    # GluonCV's store, given the same root and sha1, finds our file there without downloading.
    monkeypatch.delenv("MXNET_HOME")
    monkeypatch.setitem(_gluoncv_store()._model_sha1, "resnest_tiny", info.sha1)
    found = _gluoncv_store().get_model_file("resnest_tiny", root=str(root))
    assert os.path.samefile(found, root / info.file_name) and len(server.requests) == 1


def test_offline_message_names_file_sha1_folder_and_every_url(env, server, monkeypatch):
    _, src = _weights(env)
    info, _ = _publish(monkeypatch, "resnest50", src)
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url + "gcv/")      # nothing there: 404
    monkeypatch.setenv("ENCODING_REPO", "http://127.0.0.1:1/")       # nothing listening
    with pytest.raises(UserError) as err:
        store.get_model_file("resnest50")
    msg = str(err.value)
    for part in (info.file_name, info.sha1, store.store_root(), "is missing",
                 server.url + "gcv/" + _gluoncv_path(info.stem),
                 "http://127.0.0.1:1/" + _authors_path(info.stem)):
        assert part in msg, part


@pytest.mark.parametrize("bad", ["another file", "truncated zip"])
def test_a_bad_download_is_never_kept(env, server, monkeypatch, bad):
    _, src = _weights(env)
    info, zipped = _publish(monkeypatch, "resnest14", src)
    payload = zipped[:len(zipped) // 2] if bad == "truncated zip" else b"x" + src.read_bytes()
    server.put("gcv/" + _gluoncv_path(info.stem), payload)
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url + "gcv/")
    with pytest.raises(UserError, match=f"{info.file_name} \\(sha1 {info.sha1}\\)"):
        store.get_model_file("resnest14")
    assert sorted(os.listdir(store.store_root())) == [info.file_name + ".lock"]


def test_a_corrupt_file_in_the_store_is_replaced(env, server, monkeypatch):
    _, src = _weights(env)
    info, zipped = _publish(monkeypatch, "resnest14", src)
    server.put("gcv/" + _gluoncv_path(info.stem), zipped)
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url + "gcv/")
    os.makedirs(store.store_root())
    path = os.path.join(store.store_root(), info.file_name)
    with open(path, "wb") as f:
        f.write(b"garbage")
    assert store.get_model_file("resnest14") == path
    assert store.sha1_file(path) == info.sha1 and len(server.requests) == 1


def test_concurrent_callers_download_once(env, server, monkeypatch):
    _, src = _weights(env)
    info, zipped = _publish(monkeypatch, "resnest14", src)
    server.put("gcv/" + _gluoncv_path(info.stem), zipped)
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url + "gcv/")
    paths = []
    threads = [threading.Thread(target=lambda: paths.append(store.get_model_file("resnest14")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(paths) == 4 and len(set(paths)) == 1 and len(server.requests) == 1


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


def test_a_model_without_published_weights_is_one_sentence():
    with pytest.raises(UserError, match="no published weights"):
        store.get_model_file("resnest_tiny")
