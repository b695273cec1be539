"""The pretrained-weights store: sha1-checked ``{model}-{sha1[:8]}.params`` files.

Files live in ``$MXNET_HOME/models`` (default ``~/.mxnet/models``), GluonCV's convention, unless
a ``root`` is given. A missing file is downloaded from, in order: ``$RESNEST_MODEL_REPO`` (a
private mirror, used alone when set), ``$MXNET_GLUON_REPO`` or GluonCV's bucket (the models it
hosts), the authors' release. A download goes to a temporary file and is renamed only after its
sha1 matches; a file lock makes concurrent callers (Horovod ranks) download once.
"""
import fcntl
import os
import shutil
import tempfile
import urllib.request
import zipfile

import mxnet as mx

from .checksum import file_digest
from .errors import UserError
from .pretrained import PRETRAINED

__all__ = ["store_root", "sha1_file", "weight_urls", "get_model_file", "load_weights",
           "read_params"]

GLUONCV_REPO = "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/"
AUTHORS_RELEASE = "https://github.com/zhanghang1989/ResNeSt/releases/download/weights_step2/"
# GluonCV's bucket hosts only these; the fast variants are on the authors' release alone.
_ON_GLUONCV = {"resnest14", "resnest26", "resnest50", "resnest101", "resnest200", "resnest269"}


def store_root(root=None):
    """The folder holding the weight files: ``root``, else ``$MXNET_HOME/models``."""
    if root is None:
        root = os.path.join(os.environ.get("MXNET_HOME", os.path.join("~", ".mxnet")), "models")
    return os.path.expanduser(root)


def sha1_file(path):
    """Hex sha1 of a file."""
    return file_digest(path, "sha1")


def weight_urls(name):
    """Download addresses to try, in order, for a model's published ``.params`` (zipped)."""
    file_name = PRETRAINED[name].file_name + ".zip"
    mirror = os.environ.get("RESNEST_MODEL_REPO")
    if mirror:
        return [mirror.rstrip("/") + "/" + file_name]
    urls = []
    if name in _ON_GLUONCV:
        repo = os.environ.get("MXNET_GLUON_REPO", GLUONCV_REPO)
        urls.append(repo.rstrip("/") + "/gluon/models/" + file_name)
    return urls + [AUTHORS_RELEASE + file_name]


def _fetch(url, dst, timeout=60):
    """Copy ``url`` to the local path ``dst`` (tests replace this function)."""
    with urllib.request.urlopen(url, timeout=timeout) as src, open(dst, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _download(url, path, sha1):
    """Fetch ``url`` (a zip or a bare .params) and move it to ``path`` once its sha1 is right."""
    folder = os.path.dirname(path)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        raw = os.path.join(tmp, "download")
        _fetch(url, raw)
        payload = raw
        if zipfile.is_zipfile(raw):
            with zipfile.ZipFile(raw) as zf:
                members = [m for m in zf.namelist() if m.endswith(".params")]
                if len(members) != 1:
                    raise IOError(f"{url} holds {len(members)} .params files, expected 1")
                payload = zf.extract(members[0], tmp)
        got = sha1_file(payload)
        if got != sha1:
            raise IOError(f"{url} has sha1 {got}, expected {sha1} (truncated or wrong file)")
        os.replace(payload, path)


def get_model_file(name, root=None):
    """Path of the sha1-checked published weights of ``name``, downloading them if needed.

    Raises
    ------
    UserError
        If ``name`` has no published weights, or the file is absent or wrong and cannot be
        downloaded; the message names the file, its sha1 and where to put it.
    """
    if name not in PRETRAINED:
        raise UserError(f"{name!r} has no published weights; models with weights: "
                        f"{', '.join(sorted(PRETRAINED))}.")
    info = PRETRAINED[name]
    folder = store_root(root)
    path = os.path.join(folder, info.file_name)
    if os.path.isfile(path) and sha1_file(path) == info.sha1:
        return path
    os.makedirs(folder, exist_ok=True)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)       # one downloader; the others wait, then re-check
        if os.path.isfile(path) and sha1_file(path) == info.sha1:
            return path
        errors = []
        for url in weight_urls(name):
            try:
                _download(url, path, info.sha1)
                return path
            except Exception as err:             # network, zip or sha1 trouble: try the next
                errors.append(f"{url}: {err}")
    state = ("exists but its sha1 differs (corrupt or another file)" if os.path.isfile(path)
             else "is missing")
    raise UserError(f"weights file {path} {state} and could not be downloaded "
                    f"({'; '.join(errors)}); put {info.file_name} (sha1 {info.sha1}) in "
                    f"{folder}, or pass pretrained='/path/to/file.params'.")


def read_params(path):
    """Load a ``.params`` file as a dict of NDArrays, with one clear error if it is not one."""
    if not os.path.isfile(path):
        raise UserError(f"weights file {path} does not exist.")
    try:
        arrays = mx.nd.load(path)
    except mx.base.MXNetError:
        raise UserError(f"weights file {path} is not a readable MXNet .params file "
                        f"(truncated or corrupt).") from None
    if not isinstance(arrays, dict):
        raise UserError(f"weights file {path} holds a list of arrays, not named parameters.")
    return arrays


def load_weights(net, path, ctx=None, name=None):
    """Load ``path`` into ``net`` after checking that every name and shape matches.

    ``name`` (the model's registry name) is only used in messages.

    Raises
    ------
    UserError
        If the file is unreadable or holds the weights of another model (other names, or other
        shapes, e.g. another class count).
    """
    arrays = read_params(path)
    params = net._collect_params_with_prefix()
    missing = sorted(set(params) - set(arrays))
    extra = sorted(set(arrays) - set(params))
    shapes = sorted(k for k in set(params) & set(arrays)
                    if params[k].shape and 0 not in params[k].shape
                    and tuple(params[k].shape) != arrays[k].shape)
    if not missing and not extra and shapes and all(k.startswith("fc.") for k in shapes):
        raise UserError(f"weights file {path} was trained for {arrays['fc.bias'].shape[0]} "
                        f"classes, not {params['fc.bias'].shape[0]}; build the model with "
                        f"classes={arrays['fc.bias'].shape[0]}.")
    if missing or extra or shapes:
        detail = []
        if missing:
            detail.append(f"{len(missing)} parameters missing (e.g. {missing[0]})")
        if extra:
            detail.append(f"{len(extra)} unknown (e.g. {extra[0]})")
        if shapes:
            k = shapes[0]
            detail.append(f"{len(shapes)} of other shape (e.g. {k}: {arrays[k].shape} in the "
                          f"file, {tuple(params[k].shape)} in the model)")
        raise UserError(f"weights file {path} does not fit model {name or net.name}: "
                        f"{', '.join(detail)}; it holds another model's weights.")
    net.load_parameters(path, ctx=ctx or mx.cpu())
    return net
