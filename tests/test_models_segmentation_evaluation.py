"""The segmentation evaluation protocols against GluonCV 0.10.5's own: ``MultiEvalModel``
(``gluoncv/model_zoo/segbase.py``) driving the same model on real photos of several sizes and
aspect ratios, GluonCV's input transforms (``ToTensor`` + ``Normalize``), and the settings table
against the constants in GluonCV's source.

GluonCV's evaluator allocates its buffers with ``mx.nd.zeros`` (float32); to compare in float64
the tests hand its module a float64 ``zeros`` and nothing else (its algorithm runs unchanged).
"""
import inspect
import re
import types
import warnings

import mxnet as mx
import numpy as np
import pytest

from _images import skimage_photo as photo
from conftest import randomize_bn
from resnest.gluon import UserError, get_model
from resnest.gluon.models.segmentation.evaluation import (multi_scale, normalize, pad_image,
                                                          single_scale, window_starts)
from resnest.gluon.pretrained import PRETRAINED, SegmentationEval, segmentation_eval

segbase = pytest.importorskip("gluoncv.model_zoo.segbase")

# (photo, height, width): landscape, portrait, square, a thin strip.
IMAGES = [("astronaut", 24, 36), ("coffee", 44, 28), ("chelsea", 36, 36), ("rocket", 14, 60)]
SMALL = SegmentationEval(base_size=40, crop_size=32)




class _Module:
    """Our model as the ``module`` GluonCV's MultiEvalModel drives: its base and crop size,
    ``evaluate`` = the main output, ``collect_params``."""

    def __init__(self, net, settings):
        self.net, self.base_size, self.crop_size = net, settings.base_size, settings.crop_size

    def evaluate(self, x):
        return self.net(x)[0]

    def collect_params(self):
        return self.net.collect_params()


class _Float64Zeros:
    """``mx.nd`` with float64 ``zeros``, for GluonCV's segbase."""

    def __getattr__(self, name):
        return getattr(mx.nd, name)

    @staticmethod
    def zeros(shape, ctx=None, dtype=None, **kwargs):
        return mx.nd.zeros(shape, ctx=ctx, dtype="float64", **kwargs)


@pytest.fixture(scope="module")
def tiny():
    net = get_model("deeplab_resnest_tiny", classes=6)
    net.initialize(mx.init.Xavier(magnitude=6))
    randomize_bn(net, mx.nd.random.uniform(shape=(1, 3, 32, 32)))
    net.cast("float64")
    net.hybridize(static_alloc=True)           # the same numbers, 7x faster for small windows
    return net


def gluoncv_scores(net, image, settings, monkeypatch):
    monkeypatch.setattr(segbase, "mx", types.SimpleNamespace(nd=_Float64Zeros()))
    evaluator = segbase.MultiEvalModel(_Module(net, settings), 6, [mx.cpu()],
                                       flip=settings.flip, scales=list(settings.scales))
    return evaluator(image[0])


@pytest.mark.parametrize("name,height,width,flip", [i + (True,) for i in IMAGES]
                         + [IMAGES[1] + (False,)])
def test_multi_scale_equals_gluoncv(tiny, name, height, width, flip, monkeypatch):
    settings = SegmentationEval(base_size=SMALL.base_size, crop_size=SMALL.crop_size,
                                flip=flip)
    x = normalize(photo(name, height, width), settings, dtype="float64")
    want = gluoncv_scores(tiny, x, settings, monkeypatch).asnumpy()
    got = multi_scale(tiny, x, settings).asnumpy()
    assert got.dtype == np.float64 and got.shape == (1, 6, height, width)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert (got.argmax(1) == want.argmax(1)).all()


def test_scales_cover_both_branches():
    """The photos above reach both of GluonCV's branches: padded whole images (long side <=
    crop) and sliding windows, with and without padding the short side first."""
    branches = set()
    for _, h, w in IMAGES:
        for scale in SMALL.scales:
            long_size = int(np.ceil(SMALL.base_size * scale))
            short = min(h, w) * long_size / max(h, w)
            branches.add("whole" if long_size <= SMALL.crop_size else
                          "windows+pad" if short < SMALL.crop_size else "windows")
    assert branches == {"whole", "windows", "windows+pad"}


@pytest.mark.slow
def test_multi_scale_with_gluoncvs_own_model(monkeypatch):
    """GluonCV's MultiEvalModel with its own DeepLabV3 (crop 48) against ours with the same
    weights; float64, two photos (about a minute on a busy 2-core machine)."""
    from gluoncv.model_zoo import get_model as gluoncv_get
    settings = SegmentationEval(base_size=56, crop_size=48, scales=(0.75, 1.0, 1.25))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = gluoncv_get("deeplab_resnest50_ade", pretrained=False, pretrained_base=False,
                             base_size=56, crop_size=48)
        theirs.initialize()
    randomize_bn(theirs, mx.nd.random.uniform(shape=(1, 3, 48, 48)))
    theirs.cast("float64")
    ours = get_model("deeplab_resnest50_ade")
    ours.initialize(mx.init.Zero())
    ours.cast("float64")
    mine = ours._collect_params_with_prefix()
    for key, param in theirs._collect_params_with_prefix().items():
        mine[key].set_data(param.data())
    monkeypatch.setattr(segbase, "mx", types.SimpleNamespace(nd=_Float64Zeros()))
    evaluator = segbase.MultiEvalModel(theirs, 150, [mx.cpu()], scales=list(settings.scales))
    for name, h, w in IMAGES[:2]:
        x = normalize(photo(name, h, w), settings, dtype="float64")
        np.testing.assert_allclose(multi_scale(ours, x, settings).asnumpy(),
                                   evaluator(x[0]).asnumpy(), rtol=1e-9)


def test_single_scale_is_the_whole_image(tiny):
    """GluonCV's test.py single scale: no resize, padding or crop; a batch at once."""
    x = mx.nd.concat(*[normalize(photo(n, 37, 45), dtype="float64") for n in ("coffee",
                                                                            "astronaut")],
                     dim=0)
    got = single_scale(tiny, x)
    assert got.shape == (2, 6, 37, 45)
    np.testing.assert_array_equal(got.asnumpy(), tiny(x)[0].asnumpy())


def test_normalize_is_gluoncvs_transform():
    from mxnet.gluon.data.vision import transforms
    rgb = photo("chelsea", 31, 47)
    settings = segmentation_eval("deeplab_resnest50_ade")
    theirs = transforms.Compose([transforms.ToTensor(),
                                 transforms.Normalize(settings.mean, settings.std)])
    want = theirs(mx.nd.array(rgb, dtype="uint8")).asnumpy()
    got = normalize(rgb, settings).asnumpy()
    assert got.shape == (1, 3, 31, 47) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], want, rtol=1e-6, atol=1e-6)
    with pytest.raises(UserError, match="RGB"):
        normalize(rgb[..., 0], settings)


def test_padding_and_windows_are_gluoncvs():
    x = mx.nd.random.uniform(shape=(1, 3, 20, 50), dtype="float64")
    want = segbase._pad_image(x.astype("float32"), 48).asnumpy()             # float32 inside
    got = pad_image(x, 48, SMALL).asnumpy()
    assert got.shape == want.shape == (1, 3, 48, 50)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # GluonCV's grid: ceil((length - crop) / stride) + 1 windows, stride int(crop * 2 / 3).
    assert window_starts(90, 48, 32) == [0, 32, 64]
    assert window_starts(48, 48, 32) == [0]


def test_settings_are_gluoncvs():
    """The published rows against the defaults and constants of GluonCV's code."""
    from gluoncv.model_zoo.deeplabv3 import DeepLabV3
    model = inspect.signature(DeepLabV3.__init__).parameters
    evaluator = inspect.signature(segbase.MultiEvalModel.__init__).parameters
    source = inspect.getsource(segbase)
    stride = re.search(r"stride_rate = ([\d.]+)/([\d.]+)", source).groups()
    mean = re.search(r"mean = \[([^\]]*)\]", source).group(1)
    std = re.search(r"std = \[([^\]]*)\]", source).group(1)
    rows = [info for info in PRETRAINED.values() if info.task == "segmentation"]
    assert len(rows) == 4
    for info in rows:
        s = info.eval
        assert (s.base_size, s.crop_size) == (model["base_size"].default,
                                              model["crop_size"].default)
        assert list(s.scales) == evaluator["scales"].default
        assert s.flip is evaluator["flip"].default
        assert s.stride_rate == float(stride[0]) / float(stride[1])
        assert s.mean == tuple(float(v) for v in mean.split(","))
        assert s.std == tuple(float(v) for v in std.split(","))
    assert segmentation_eval("deeplab_resnest50_ade", base_size=64).base_size == 64
    assert segmentation_eval("no_such_model") == SegmentationEval()


def test_multi_scale_takes_one_image(tiny):
    with pytest.raises(UserError, match="one image"):
        multi_scale(tiny, mx.nd.zeros((2, 3, 20, 20), dtype="float64"), SMALL)
