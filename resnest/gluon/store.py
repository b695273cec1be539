"""The pretrained-weights store: sha1-checked ``{model}-{sha1[:8]}.params`` files.

Files live in ``$MXNET_HOME/models`` (default ``~/.mxnet/models``), GluonCV's convention, unless
a ``root`` is given. A missing file is downloaded as the published zip ``{model}-{sha1[:8]}.zip``
(holding the ``.params``) from, in order:

* ``$RESNEST_MODEL_REPO`` + ``{stem}.zip`` -- a private mirror; when set, it is the only place
  asked.
* GluonCV's bucket, ``{repo}gluon/models/{stem}.zip`` with ``repo = $MXNET_GLUON_REPO`` or
  Apache MXNet's S3 bucket (resnest14, 26, 50, 101, 200, 269; GluonCV's model_store layout).
* The authors' store, ``{repo}gluon/{stem}.zip`` with ``repo = $ENCODING_REPO`` (the variable
  the authors' package reads) or their Wasabi bucket (resnest50, 101, 200, 269 and the seven
  fast variants, which exist only there; resnest 0.0.5's model_store layout).

A download goes to a temporary file and replaces the target only after its sha1 matches; a file
lock makes concurrent callers (Horovod ranks) download once.
"""
import fcntl
import hashlib
import os
import sys
import shutil
import tempfile
import urllib.request
import zipfile

from .pretrained import PRETRAINED
from .utils.checksum import sha1_file
from .utils.errors import UserError
from .utils.files import read_regular
from .utils.io import atomic_write
from .utils.processes import wait_until
from .convert.formats import format_of
from .convert.names import mismatch
from .convert.translate import read_foreign_params

__all__ = ["HOSTS", "store_root", "weight_urls", "get_model_file", "read_params",
           "load_weights"]

# name -> (environment variable, default repository, path of a model's zip inside it)
HOSTS = {
    "gluoncv": ("MXNET_GLUON_REPO", "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/",
                "gluon/models/{stem}.zip"),
    "authors": ("ENCODING_REPO", "https://s3.us-west-1.wasabisys.com/resnest/",
                "gluon/{stem}.zip"),
}
MIRROR_VARIABLE = "RESNEST_MODEL_REPO"


def store_root(root=None):
    """The folder holding the weight files: ``root``, else ``$MXNET_HOME/models``."""
    if root is None:
        root = os.path.join(os.environ.get("MXNET_HOME", os.path.join("~", ".mxnet")), "models")
    return os.path.expanduser(root)


def _repo(url):
    return url if url.endswith("/") else url + "/"


def weight_urls(name):
    """Download addresses to try, in order, for a model's published zip."""
    info = PRETRAINED[name]
    mirror = os.environ.get(MIRROR_VARIABLE)
    if mirror:
        return [_repo(mirror) + info.stem + ".zip"]
    urls = []
    for host in info.hosts:
        variable, default, path = HOSTS[host]
        urls.append(_repo(os.environ.get(variable) or default) + path.format(stem=info.stem))
    return urls


def _fetch(url, dst, timeout=60):
    """Copy ``url`` to the local path ``dst``."""
    with urllib.request.urlopen(url, timeout=timeout) as src, open(dst, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


class _BadDownload(Exception):
    """A download that arrived but is not the published file."""


def _download(url, path, sha1):
    """Fetch ``url`` (the zip, or a bare .params) and move it to ``path`` once its sha1 is
    right; raises otherwise and leaves ``path`` as it was."""
    def write(tmp):
        with tempfile.TemporaryDirectory(dir=os.path.dirname(tmp), prefix=".download-") as work:
            raw = os.path.join(work, "download")
            _fetch(url, raw)
            payload = raw
            if zipfile.is_zipfile(raw):
                with zipfile.ZipFile(raw) as zf:
                    members = [m for m in zf.namelist() if m.endswith(".params")]
                    if len(members) != 1:
                        raise _BadDownload(f"it holds {len(members)} .params files, expected 1")
                    payload = zf.extract(members[0], work)
            got = sha1_file(payload)
            if got != sha1:
                raise _BadDownload(f"it has sha1 {got}, expected {sha1} (truncated or another "
                                   "file)")
            os.replace(payload, tmp)
    atomic_write(path, write)


def get_model_file(name, root=None):
    """Path of the sha1-checked published weights of ``name``, downloading them if needed.

    Raises
    ------
    UserError
        If ``name`` has no published weights, or the file is absent or wrong and cannot be
        downloaded; the message names the file, its sha1, the folder and the URLs tried.
    """
    if name not in PRETRAINED:
        raise UserError(f"{name!r} has no published weights; models with weights: "
                        f"{', '.join(sorted(PRETRAINED))}.")
    info = PRETRAINED[name]
    folder = store_root(root)
    path = os.path.join(folder, info.file_name)
    if os.path.isfile(path) and sha1_file(path) == info.sha1:
        return path
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the weights folder {folder}: {err.strerror}; pass "
                        "root= or set MXNET_HOME to a writable folder.") from None
    with open(path + ".lock", "a+") as lock:
        _lock_store(lock, path)                # one downloader; the others wait, then re-check
        if os.path.isfile(path) and sha1_file(path) == info.sha1:
            return path
        errors = []
        for url in weight_urls(name):
            try:
                _download(url, path, info.sha1)
                return path
            # Any of these: try the next host.
            except (OSError, UserError, zipfile.BadZipFile, _BadDownload) as err:
                errors.append(f"{url} ({err})")
    state = ("exists but its sha1 differs (corrupt or another file)" if os.path.isfile(path)
             else "is missing")
    raise UserError(f"weights file {path} {state} and could not be downloaded; tried "
                    f"{'; '.join(errors)}. Put {info.file_name} (sha1 {info.sha1}) in {folder}, "
                    "or pass pretrained='/path/to/file.params'.")


# How long a caller waits for another process downloading the same file (a 400 MB file over
# a slow link), RESNEST_STORE_WAIT seconds.
STORE_WAIT = 1800.0


def _lock_store(lock, path):
    """Take the download lock of ``path``; while another live process holds it, wait (at most
    ``$RESNEST_STORE_WAIT`` seconds) and say once who is being waited for."""
    def free():
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
    if not free():
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        wait_until(free, float(os.environ.get("RESNEST_STORE_WAIT", STORE_WAIT)),
                   f"process {holder}, which is downloading {os.path.basename(path)} (lock "
                   f"{path}.lock)", say=lambda message: print(message, file=sys.stderr,
                                                              flush=True))
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")                  # for whoever waits next
    lock.flush()


def read_params(path, sha1=None):
    """The arrays of a weights file as a dict of NDArrays under our parameter names, with one
    clear error if it is not one; with ``sha1`` (a checkpoint's record) the bytes read are
    checked against it first.

    A file is recognised by its content: an MXNet ``.params``, or a PyTorch ``.pth`` /
    ``.safetensors`` in timm's, the authors' torch, Detectron2's or MMDetection's names,
    renamed to ours by :mod:`resnest.gluon.convert` (BN counters dropped, nothing else).
    """
    import mxnet as mx
    if not os.path.isfile(path):
        raise UserError(f"weights file {path} does not exist.")
    fmt = format_of(path)
    if fmt in ("pth", "safetensors"):
        return read_foreign_params(path)
    if fmt is None:
        raise UserError(f"weights file {path} is not a readable MXNet .params file, PyTorch "
                        ".pth or .safetensors file (truncated or corrupt).")
    try:
        data = read_regular(path)
    except OSError as err:
        raise UserError(f"cannot read weights file {path}: {err.strerror}.") from None
    if sha1 is not None and hashlib.sha1(data).hexdigest() != sha1:
        raise UserError(f"weights file {path} is not the one its record "
                        f"({os.path.splitext(path)[0]}.json) names (sha1 differs): it was "
                        "changed or damaged after it was written.")
    try:
        arrays = mx.nd.load_frombuffer(data)
    except mx.base.MXNetError:
        raise UserError(f"weights file {path} is not a readable MXNet .params file "
                        f"(truncated or corrupt).") from None
    if not isinstance(arrays, dict):
        raise UserError(f"weights file {path} holds a list of arrays, not named parameters.")
    return arrays


def load_weights(net, path, ctx=None, name=None, ignore=(), keep=(), arrays=None):
    """Load ``path`` (or its already read ``arrays``) into ``net`` after checking that every
    name and shape matches; the file is read once.

    ``name`` (the model's registry name) is only used in messages. Parameters of the file whose
    names start with one of the ``ignore`` prefixes (e.g. ``'fc.'`` for a backbone) may be
    absent from ``net`` and are not loaded. Parameters of ``net`` whose names start with one of
    the ``keep`` prefixes (e.g. the heads of a segmentation model loading its backbone's
    classifier weights) must be absent from the file and keep their values; ``net`` must then
    be initialised already. Every other name and shape must match.

    Raises
    ------
    UserError
        If the file is unreadable or holds the weights of another model (other names, or other
        shapes, e.g. another class count).
    """
    import mxnet as mx
    arrays = read_params(path) if arrays is None else arrays
    ignore = tuple(ignore)
    if ignore:
        arrays = {k: v for k, v in arrays.items() if not k.startswith(ignore)}
    keep = tuple(keep)
    params = net._collect_params_with_prefix()
    kept = {k for k in params if keep and k.startswith(keep)}
    clash = sorted(k for k in kept if k in arrays)
    if clash:
        raise UserError(f"weights file {path} holds {clash[0]}, which a file of "
                        f"{name or 'the backbone'} does not; it holds another model's weights.")
    params = {k: v for k, v in params.items() if k not in kept}
    expected = {k: tuple(p.shape) if p.shape and 0 not in p.shape else None
                for k, p in params.items()}
    detail, wrong = mismatch(expected, arrays)
    if detail and wrong and all(k.startswith("fc.") for k in wrong) and \
            set(expected) == set(arrays):
        raise UserError(f"weights file {path} was trained for {arrays['fc.bias'].shape[0]} "
                        f"classes, not {params['fc.bias'].shape[0]}; build the model with "
                        f"classes={arrays['fc.bias'].shape[0]}.")
    if detail:
        raise UserError(f"weights file {path} does not fit model {name or net.name}: "
                        f"{', '.join(detail)}; it holds another model's weights.")
    contexts = ctx if isinstance(ctx, (list, tuple)) else [ctx or mx.cpu()]
    for key, param in params.items():            # the kept ones are not among them
        # What Block.load_parameters does for each parameter (initialising it if needed).
        param._load_init(arrays[key], contexts, cast_dtype=False, dtype_source="current")
    return net
