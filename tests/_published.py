"""Pretend a model has published weights: our own small ``.params`` file, put in a weights store
in a temp folder under the published file name, with its sha1 patched into the table (the store
checks the file against it, so nothing is downloaded)."""
import dataclasses
import hashlib

import mxnet as mx

from resnest.gluon import get_model
from resnest.gluon.pretrained import PRETRAINED, EvalSettings, PretrainedInfo


def publish(monkeypatch, home, name="resnest_tiny", classes=1000, crop_size=32, x=None):
    """Write an initialised ``name`` with ``classes`` outputs as its published weights in
    ``home/models`` (``MXNET_HOME`` is set to ``home``); returns ``(net, path)``."""
    net = get_model(name, classes=classes)
    net.initialize(mx.init.Xavier())
    net(x if x is not None else mx.nd.zeros((1, 3, 32, 32)))
    models = home / "models"
    models.mkdir(parents=True, exist_ok=True)
    tmp = models / "tmp.params"
    net.save_parameters(str(tmp))
    sha1 = hashlib.sha1(tmp.read_bytes()).hexdigest()
    info = PretrainedInfo(name, sha1, ("gluoncv",), eval=EvalSettings(crop_size))
    path = models / info.file_name
    tmp.rename(path)
    monkeypatch.setitem(PRETRAINED, name, info)
    monkeypatch.setenv("MXNET_HOME", str(home))
    # The only host asked, were the file missing: a closed local port, so nothing leaves.
    monkeypatch.setenv("RESNEST_MODEL_REPO", "http://127.0.0.1:9/")
    return net, path


def publish_file(monkeypatch, home, name, path, **row):
    """Put ``path`` in a weights store under ``home`` as ``name``'s published file (its sha1
    patched into our table); nothing can be downloaded (a closed local port)."""
    data = open(path, "rb").read()
    base = PRETRAINED.get(name) or PretrainedInfo(name, "0" * 40, ("gluoncv",), **row)
    info = dataclasses.replace(base, sha1=hashlib.sha1(data).hexdigest())
    monkeypatch.setitem(PRETRAINED, name, info)
    (home / "models").mkdir(parents=True, exist_ok=True)
    (home / "models" / info.file_name).write_bytes(data)
    monkeypatch.setenv("MXNET_HOME", str(home))
    monkeypatch.setenv("RESNEST_MODEL_REPO", "http://127.0.0.1:9/")
    return info
