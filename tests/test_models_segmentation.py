"""The segmentation models against GluonCV 0.10.5's own DeepLabV3 and FCN (``gluoncv.model_zoo``):
the same parameter names and shapes (so GluonCV's published files load strictly, both ways),
the same main and auxiliary outputs with the same weights on real photos (float64), at any
input size; the registry, the weights store, and the ONNX export of the models.

Expected values come from GluonCV's models, built with ``pretrained=False,
pretrained_base=False`` for the input size they are compared at (GluonCV's DeepLab runs at one
size only, fixed by its ``height`` / ``width`` / ``crop_size``), or from its ``predict``.
"""
import warnings

import mxnet as mx
import numpy as np
import pytest

from _images import skimage_photo as photo
from _published import publish_file
from conftest import openvino_or_skip, randomize_bn
from resnest.gluon import UserError, get_model, list_models, model_task
from resnest.gluon.pretrained import PRETRAINED, SegmentationEval
from resnest.gluon.models.segmentation.evaluation import normalize, single_scale

gluoncv = pytest.importorskip("gluoncv")

DEPTHS = (50, 101, 200, 269)


def gluoncv_model(name, **kwargs):
    """GluonCV's segmentation model ``name``, no weights loaded, BN/init warnings hushed."""
    from gluoncv.model_zoo import get_model as gluoncv_get
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gluoncv_get(name, pretrained=False, pretrained_base=False, **kwargs)


def manifest(net):
    return sorted(f"{k} {tuple(v.shape)}" for k, v in net._collect_params_with_prefix().items())




def copy_into(dst, src):
    """Initialise ``dst`` in ``src``'s dtype and give it every array of ``src``, by name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dst.initialize(mx.init.Zero())
    theirs = src._collect_params_with_prefix()
    dtype = next(iter(theirs.values())).dtype
    dst.cast(dtype)
    ours = dst._collect_params_with_prefix()
    assert sorted(ours) == sorted(theirs)
    for key, param in ours.items():
        param.set_data(theirs[key].data())


def same_weights(theirs, ours):
    """Initialise GluonCV's ``theirs`` with random BN statistics and affine parameters (so BN
    is no identity), copy every array into ``ours`` by name, and cast both to float64. Every
    shape is known before a forward pass (GluonCV's layers are given their input channels)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.initialize()
    randomize_bn(theirs)
    theirs.cast("float64")
    copy_into(ours, theirs)


def assert_same(ours, theirs, rtol=1e-10):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        a, b = a.asnumpy(), b.asnumpy()
        assert a.dtype == np.float64 and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


@pytest.fixture(scope="module")
def r50_pair():
    """GluonCV's deeplab_resnest50_ade built for 64x96 inputs and ours, same random weights,
    float64, with the photo they are compared on."""
    x = normalize(photo("astronaut", 64, 96), dtype="float64")
    theirs = gluoncv_model("deeplab_resnest50_ade", height=64, width=96)
    ours = get_model("deeplab_resnest50_ade")
    same_weights(theirs, ours)
    return ours, theirs, x


# -- names, shapes, files --------------------------------------------------------------------

@pytest.mark.parametrize("depth", DEPTHS)
def test_manifest_equals_gluoncv(depth):
    name = f"deeplab_resnest{depth}_ade"
    assert manifest(get_model(name)) == manifest(gluoncv_model(name))


def test_fcn_and_no_aux_manifests_equal_gluoncv():
    from gluoncv.model_zoo.fcn import FCN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = FCN(7, backbone="resnest50", pretrained_base=False)
    assert manifest(get_model("fcn_resnest50", classes=7)) == manifest(theirs)
    no_aux = gluoncv_model("deeplab_resnest50_ade", aux=False)
    assert manifest(get_model("deeplab_resnest50_ade", aux=False)) == manifest(no_aux)


def test_gluoncv_file_loads_strictly_both_ways(tmp_path):
    theirs = gluoncv_model("deeplab_resnest50_ade")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.initialize(mx.init.Uniform(1.0), force_reinit=True)
    path = str(tmp_path / "gluoncv.params")
    theirs.save_parameters(path)
    saved = mx.nd.load(path)
    ours = get_model("deeplab_resnest50_ade", pretrained=path)
    params = ours._collect_params_with_prefix()
    assert sorted(params) == sorted(saved)                  # every array used, none left over
    for key, param in params.items():
        np.testing.assert_array_equal(param.data().asnumpy(), saved[key].asnumpy(), key)
    back = str(tmp_path / "ours.params")
    ours.save_parameters(back)
    again = gluoncv_model("deeplab_resnest50_ade")
    again.load_parameters(back)                             # GluonCV's strict load
    for key, param in again._collect_params_with_prefix().items():
        np.testing.assert_array_equal(param.data().asnumpy(), saved[key].asnumpy(), key)
    # Without the auxiliary head the file's auxlayer.* is left out, nothing else.
    head_only = get_model("deeplab_resnest50_ade", aux=False, pretrained=path)
    assert len(head_only._collect_params_with_prefix()) == len(saved) - 7


# -- outputs equal GluonCV's -------------------------------------------------------------------

def test_outputs_equal_gluoncv(r50_pair):
    ours, theirs, x = r50_pair
    out = ours(x)
    assert [o.shape for o in out] == [(1, 150, 64, 96)] * 2           # main, aux
    assert_same(out, theirs(x))


def test_hybridized_equals_imperative(r50_pair):
    ours, _, x = r50_pair
    want = ours(x)
    ours.hybridize()
    try:
        assert_same(ours(x), want, rtol=1e-12)
    finally:
        ours.hybridize(False)


def test_any_input_size(r50_pair):
    ours, theirs, x = r50_pair
    # 40x104: GluonCV's model built for 64x96 cannot run it (its ASPP pooling and output
    # sizes are fixed); one built for 40x104 gives the same as ours.
    y = normalize(photo("coffee", 40, 104), dtype="float64")
    with pytest.raises(mx.MXNetError):
        theirs(y)[0].asnumpy()
    other = gluoncv_model("deeplab_resnest50_ade", height=40, width=104)
    copy_into(other, theirs)
    assert_same(ours(y), other(y))
    # 57x83 (not a multiple of 8): no GluonCV model runs it forward; its predict() (the main
    # output, what its test.py evaluates) sizes the pooling and the output from the input.
    z = normalize(photo("chelsea", 57, 83), dtype="float64")
    want = theirs.predict(z)
    assert want.shape == (1, 150, 57, 83)
    assert_same([single_scale(ours, z)], [want])


def test_fcn_outputs_equal_gluoncv():
    from gluoncv.model_zoo.fcn import FCN
    x = normalize(photo("rocket", 48, 48), dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = FCN(7, backbone="resnest50", pretrained_base=False, crop_size=48)
    ours = get_model("fcn_resnest50", classes=7)
    same_weights(theirs, ours)
    assert_same(ours(x), theirs(x))


@pytest.mark.slow
def test_outputs_equal_gluoncv_at_crop_480():
    """GluonCV's training and evaluation size: two float64 passes at 480 (each about 30 s on
    an idle AVX2 core, minutes on a busy machine)."""
    x = normalize(photo("astronaut", 480, 480), dtype="float64")
    theirs = gluoncv_model("deeplab_resnest50_ade")             # crop_size 480
    ours = get_model("deeplab_resnest50_ade")
    same_weights(theirs, ours)
    assert_same(ours(x), theirs(x))


@pytest.mark.slow
def test_outputs_equal_gluoncv_at_320x416():
    x = normalize(photo("coffee", 320, 416), dtype="float64")
    theirs = gluoncv_model("deeplab_resnest50_ade", height=320, width=416)
    ours = get_model("deeplab_resnest50_ade")
    same_weights(theirs, ours)
    assert_same(ours(x), theirs(x))


# -- the tiny models ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,aux", [("deeplab_resnest_tiny", True),
                                      ("deeplab_resnest_tiny", False),
                                      ("fcn_resnest_tiny", True)])
def test_tiny_models_any_size_hybridized(name, aux):
    net = get_model(name, classes=5, aux=aux)
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(np.stack([photo("astronaut", 37, 53), photo("coffee", 37, 53)])
                    .transpose(0, 3, 1, 2) / 255.0)
    randomize_bn(net, x)
    want = net(x)
    assert [o.shape for o in want] == [(2, 5, 37, 53)] * (2 if aux else 1)
    net.hybridize()
    for got, ref in zip(net(x), want):
        np.testing.assert_allclose(got.asnumpy(), ref.asnumpy(), rtol=1e-4, atol=1e-5)
    bigger = mx.nd.random.uniform(shape=(1, 3, 64, 40))             # the same graph, resized
    assert net(bigger)[0].shape == (1, 5, 64, 40)


# -- registry, store, errors -------------------------------------------------------------------

def test_registry_lists_the_segmentation_task():
    own = (14, 26) + DEPTHS                           # on every published classifier
    want = sorted([f"deeplab_resnest{d}_ade" for d in DEPTHS] + [f"deeplab_resnest{d}"
                  for d in own] + [f"fcn_resnest{d}" for d in own]
                  + ["deeplab_resnest_tiny", "fcn_resnest_tiny"])
    assert list_models(task="segmentation") == want
    assert list_models(task="segmentation", pretrained=True) == \
        sorted(n for n, info in PRETRAINED.items() if info.task == "segmentation")
    assert not set(want) & set(list_models(task="classification"))
    assert model_task("deeplab_resnest50_ade") == "segmentation"


def test_user_errors():
    with pytest.raises(UserError, match="classes=N"):
        get_model("deeplab_resnest50")
    with pytest.raises(UserError, match="positive integer"):
        get_model("fcn_resnest_tiny", classes=0)
    with pytest.raises(UserError, match="150 classes"):
        get_model("deeplab_resnest50_ade", classes=21, pretrained=True)
    with pytest.raises(UserError, match="dilated"):
        get_model("deeplab_resnest_tiny", classes=3, dilation=2)


def test_pretrained_true_loads_through_the_store(tmp_path, monkeypatch):
    src = get_model("deeplab_resnest_tiny", classes=150)
    src.initialize(mx.init.Uniform(1.0))
    src.save_parameters(str(tmp_path / "w.params"))
    info = publish_file(monkeypatch, tmp_path / "home", "deeplab_resnest_tiny",
                         str(tmp_path / "w.params"), task="segmentation",
                         eval=SegmentationEval(), class_list="ade20k", classes=150)
    net = get_model("deeplab_resnest_tiny", classes=150, pretrained=True)
    for key, param in net._collect_params_with_prefix().items():
        np.testing.assert_array_equal(param.data().asnumpy(),
                                      src._collect_params_with_prefix()[key].data().asnumpy())
    # Missing and not downloadable: one sentence naming the file, its sha1 and the fix.
    (tmp_path / "home" / "models" / info.file_name).unlink()
    with pytest.raises(UserError, match=f"{info.file_name}.*{info.sha1}"):
        get_model("deeplab_resnest_tiny", classes=150, pretrained=True)


def test_published_file_is_gluoncvs(tmp_path, monkeypatch):
    from gluoncv.model_zoo import model_store
    info = PRETRAINED["deeplab_resnest50_ade"]
    short = model_store.short_hash("deeplab_resnest50_ade")
    assert info.file_name == f"deeplab_resnest50_ade-{short}.params"
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    monkeypatch.delenv("RESNEST_MODEL_REPO", raising=False)
    monkeypatch.setenv("MXNET_GLUON_REPO", "http://127.0.0.1:9/")          # offline
    with pytest.raises(UserError, match="deeplab_resnest50_ade-a8312db6.params.*could not"):
        get_model("deeplab_resnest50_ade", pretrained=True)


def test_pretrained_backbone_loads_the_classifier(tmp_path, monkeypatch):
    from _published import publish
    _, path = publish(monkeypatch, tmp_path / "home", classes=1000)
    classifier = mx.nd.load(str(path))
    net = get_model("deeplab_resnest_tiny", classes=4, pretrained_backbone=True)
    params = net._collect_params_with_prefix()
    trunk = [k for k in params if not k.startswith(("head.", "auxlayer."))]
    assert sorted(trunk) == sorted(k for k in classifier if not k.startswith("fc."))
    for key in trunk:
        np.testing.assert_array_equal(params[key].data().asnumpy(), classifier[key].asnumpy())
        assert params[key].lr_mult == 1
    for key in set(params) - set(trunk):                     # heads: initialised, 10x lr
        assert np.isfinite(params[key].data().asnumpy()).all() and params[key].lr_mult == 10
    assert net(mx.nd.zeros((1, 3, 32, 32)))[0].shape == (1, 4, 32, 32)


def test_pretrained_backbone_refuses_a_segmentation_file(tmp_path, monkeypatch):
    """A "backbone" file that holds heads is another model's: refused, not half-loaded."""
    seg = get_model("deeplab_resnest_tiny", classes=4)
    seg.initialize()
    seg.save_parameters(str(tmp_path / "seg.params"))
    publish_file(monkeypatch, tmp_path / "home", "resnest_tiny", str(tmp_path / "seg.params"))
    with pytest.raises(UserError, match="holds (head|auxlayer).*another model"):
        get_model("deeplab_resnest_tiny", classes=4, pretrained_backbone=True)


# -- export ----------------------------------------------------------------------------------

def assert_close32(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        a = a.asnumpy() if isinstance(a, mx.nd.NDArray) else a
        b = b.asnumpy()
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


@pytest.mark.parametrize("aux", [True, False])
def test_export_runs_in_onnxruntime_and_openvino(tmp_path, aux):
    """The like-mode upsampling has its own ONNX converter (MXNet's refuses it); the engines
    return MXNet's structure: ``(main, aux)`` or ``(main,)``."""
    pytest.importorskip("onnxruntime")
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    from resnest.gluon.inference import optimize
    from resnest.gluon.inference.export import export_onnx
    from resnest.gluon.inference.onnxruntime import onnx_runner
    net = get_model("deeplab_resnest_tiny", classes=5, aux=aux)
    net.initialize(mx.init.Xavier())
    x = normalize(photo("astronaut", 64, 64))
    randomize_bn(net, x)
    want = net(x)
    converters = dict(MXNetGraph.registry_.get(13, {}))
    path = export_onnx(net, str(tmp_path / "seg.onnx"), input_size=64)
    assert MXNetGraph.registry_.get(13, {}) == converters          # MXNet's table put back
    assert_close32(onnx_runner(path, threads=1)(x.asnumpy()), want)
    for backend in ("onnxruntime", "openvino"):
        if backend == "openvino":
            openvino_or_skip()
        fast = optimize(net, backend=backend, input_size=64, batch_size=1, threads=1)
        got = fast(x)
        assert isinstance(got, tuple) and len(got) == (2 if aux else 1)
        assert_close32(got, want)


@pytest.mark.slow
def test_deeplab_resnest50_exports_at_crop_480(tmp_path):
    pytest.importorskip("onnxruntime")
    from resnest.gluon.inference.export import export_onnx
    from resnest.gluon.inference.onnxruntime import onnx_runner
    net = get_model("deeplab_resnest50_ade", aux=False)
    net.initialize(mx.init.Xavier())
    x = normalize(photo("coffee", 480, 480))
    randomize_bn(net, mx.nd.random.uniform(shape=(1, 3, 64, 64)))
    want = net(x)
    path = export_onnx(net, str(tmp_path / "r50.onnx"), input_size=480)
    assert_close32(onnx_runner(path)(x.asnumpy()), want)


def test_macs_count_the_auxiliary_output_too():
    """count_macs of a model with two outputs counts both: with the auxiliary head, a 64 x 64
    image adds its two convolutions on the 8 x 8 layer3 map (output stride 8), by hand:
    3x3 1024 -> 256 and 1x1 256 -> 150."""
    from resnest.gluon.flops import count_macs
    macs = {}
    for aux in (False, True):
        net = get_model("deeplab_resnest50_ade", aux=aux)
        net.initialize()
        macs[aux] = count_macs(net, 64)
    assert macs[True] - macs[False] == 8 * 8 * (256 * 1024 * 3 * 3 + 150 * 256)
