"""The MXNet backend of :func:`~resnest.gluon.inference.optimize`: oneDNN fusion, MXNet's int8
quantization and AMP bfloat16 on a CPU; static memory and AMP float16 on a GPU.

=========  ======  ==============================================================================
dtype      device  what it does
=========  ======  ==============================================================================
float32    CPU     hybridize with static memory, then MXNet's oneDNN (MKLDNN) subgraph backend:
                   conv + BN folded into the conv weights, + ReLU / + residual add fused
float32    GPU     hybridize with static memory
bfloat16   CPU     MXNet AMP (``amp.convert_hybrid_block``) to bfloat16 with the low-precision
                   layers' parameters cast once (:func:`convert_low_precision`), then the oneDNN
                   backend; needs a CPU with AVX-512 (bf16 instructions for full speed)
int8       CPU     MXNet quantization (``quantize_net_v2``, channel-wise weights) calibrated on
                   real images (entropy or naive), the layers in :data:`INT8_EXCLUDE` in float32
float16    GPU     MXNet AMP to float16, parameters cast once as for bfloat16
=========  ======  ==============================================================================

MXNet 1.9.1's oneDNN is v2.4.4, which keeps Intel AMX off by default: on an AMX Xeon its
bfloat16 and int8 run AVX-512 kernels (docs/bf16.md).
"""
import contextlib

import mxnet as mx
from mxnet.gluon import nn

from ..utils.errors import UserError
from .calibration import calibration_batches

__all__ = ["INT8_EXCLUDE", "bfloat16_supported", "convert_low_precision", "optimize_mxnet"]

# What MXNet's int8 keeps in float32, as substrings of the graph's node names: the stem's first
# conv, the classifier, and the whole split-attention block (its 3x3 conv, attention fc1/fc2,
# softmax and weighted sum). The split-attention 3x3 conv is what matters: MXNet requantises its
# output to int8 before the split, the pooling and the multiply, and top-1 agreement with
# float32 on held-out real photos falls to about 71% whenever that block is int8, whatever else
# is excluded; keeping its 3x3 conv float32 gives 99.54%, the whole block 99.58%
# (tools/int8_study.py: a narrow ResNeSt-14 trained on 64-px patches of 17 photos;
# docs/inference.md, "int8 you can trust"). The price: ResNeSt-50 int8 runs about 1.7x the
# authors' float32 at batch 16 instead of about 3.4x. The ONNX engines' QDQ int8 does not have
# this problem (quantize.ONNX_INT8_EXCLUDE).
INT8_EXCLUDE = ("conv1conv0_fwd", "dense0_fwd", "splitattentionconv0_")

_BF16_OK = None


def bfloat16_supported():
    """Whether oneDNN can run bfloat16 convolutions on this CPU (it needs AVX-512)."""
    global _BF16_OK
    if _BF16_OK is None:
        from mxnet.contrib import amp
        probe = nn.Conv2D(4, 3, in_channels=3)
        probe.initialize(ctx=mx.cpu())
        probe.hybridize()
        x = mx.nd.ones((1, 3, 8, 8))
        probe(x)
        try:
            out = amp.convert_hybrid_block(probe, target_dtype="bfloat16", ctx=mx.cpu())(x)
            out.wait_to_read()
            _BF16_OK = True
        except mx.base.MXNetError:
            _BF16_OK = False
    return _BF16_OK


class _AsFloat32(nn.HybridBlock):
    """Wraps a reduced-precision block so that its output is float32 logits."""

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def hybrid_forward(self, F, x):
        out = self.inner(x)
        if isinstance(out, (list, tuple)):            # a segmentation model's outputs
            return tuple(F.amp_cast(o, dtype="float32") for o in out)
        return F.amp_cast(out, dtype="float32")


def _settle(out):
    """Wait for every output of a block (one array, or a segmentation model's tuple)."""
    for array in out if isinstance(out, (list, tuple)) else [out]:
        array.wait_to_read()


def convert_low_precision(net, dtype, ctx, cast_params=True, target_dtype_ops=None,
                          fp32_ops=None):
    """``net`` (hybridized and run once) converted by MXNet AMP to ``dtype``.

    Parameters
    ----------
    net : HybridBlock
    dtype : {'bfloat16', 'float16'}
    ctx : mx.Context
    cast_params : bool
        Store the parameters of the low-precision layers in ``dtype``, cast once here
        (``cast_optional_params``). MXNet's default keeps them float32 and casts them inside
        the graph at every call: 121 casts per call for ResNeSt-50, and each BN-folded oneDNN
        convolution, seeing its weight input change, folds and reorders its weights again at
        every call (docs/bf16.md). The values are the same either way.
    target_dtype_ops, fp32_ops : list of str, optional
        MXNet AMP's operator lists (default: MXNet's own for ``dtype``).

    Returns
    -------
    SymbolBlock
    """
    from mxnet.contrib import amp
    with _concat_of_widest_type(dtype):
        return amp.convert_hybrid_block(net, target_dtype=dtype,
                                        target_dtype_ops=target_dtype_ops, fp32_ops=fp32_ops,
                                        ctx=ctx, cast_optional_params=cast_params)


@contextlib.contextmanager
def _concat_of_widest_type(dtype):
    """MXNet 1.9's bfloat16 lists call ``concat`` type-neutral (run in whatever type comes in),
    and its type check then refuses inputs of two types: DeepLab's image-pooling branch ends
    in ``broadcast_like``, a float32-only op, beside the bfloat16 convolutions of the other
    branches ("Error in operator ..._aspp0_concat0"). Its float16 lists cast ``concat``'s
    inputs to the widest type instead; this does the same for bfloat16 while converting (the
    graph is unchanged where all inputs already agree)."""
    if dtype != "bfloat16":
        yield
        return
    from mxnet.contrib.amp.lists import symbol_bf16 as lists
    neutral, widest = list(lists.BF16_FP32_FUNCS), list(lists.WIDEST_TYPE_CASTS)
    names = ("Concat", "concat")
    lists.BF16_FP32_FUNCS[:] = [op for op in neutral if op not in names]
    lists.WIDEST_TYPE_CASTS[:] = widest + [op for op in names if op not in widest]
    try:
        yield
    finally:
        lists.BF16_FP32_FUNCS[:] = neutral
        lists.WIDEST_TYPE_CASTS[:] = widest


def _hybridized(net, x):
    net.hybridize(static_alloc=True, static_shape=True)
    _settle(net(x))
    return net


def _fuse_cpu(net, x):
    # oneDNN subgraph backend: folds BN into conv weights and fuses ReLU and residual adds.
    net.optimize_for(x, backend="MKLDNN", static_alloc=True, static_shape=True)
    _settle(net(x))
    return net


def _quantize(net, x, calib_data, calib_mode, exclude, num_calib_batches):
    from mxnet.contrib.quantization import quantize_net_v2
    if calib_mode != "none" and calib_data is None:
        raise UserError("int8 needs calib_data (real images) for calib_mode="
                        f"{calib_mode!r}; pass a loader or use calib_mode='none'.")
    batches = calibration_batches(calib_data, num_calib_batches) if calib_data is not None \
        else None
    net.hybridize()
    _settle(net(x))
    shapes = [mx.io.DataDesc("data", batches[0][0].shape if batches else x.shape)]
    # Channel-wise weight scales: one scale per output channel instead of per tensor.
    qnet = quantize_net_v2(net, quantized_dtype="auto", quantize_granularity="channel-wise",
                           exclude_layers_match=list(exclude), calib_data=batches,
                           data_shapes=shapes, calib_mode=calib_mode, ctx=mx.cpu())
    return _hybridized(qnet, x)


def optimize_mxnet(net, dtype, ctx, calib_data, input_size, batch_size, calib_mode="entropy",
                   exclude=INT8_EXCLUDE, num_calib_batches=None):
    """:func:`~resnest.gluon.inference.optimize` for ``backend='mxnet'`` (checked arguments)."""
    gpu = ctx.device_type == "gpu"
    if dtype == "float16" and not gpu:
        raise UserError("float16 inference is a GPU path; on a CPU use bfloat16 or int8.")
    if dtype in ("bfloat16", "int8") and gpu:
        raise UserError(f"{dtype} inference is a CPU path here; on a GPU use float16.")
    if dtype == "bfloat16" and not bfloat16_supported():
        raise UserError("this CPU cannot run bfloat16 convolutions in oneDNN (it needs AVX-512, "
                        "ideally avx512_bf16); use float32 or int8.")
    x = mx.nd.zeros((batch_size, 3, input_size, input_size), ctx=ctx)
    if dtype == "int8":
        return _quantize(net, x, calib_data, calib_mode, exclude, num_calib_batches)
    if dtype == "float32":
        net = _hybridized(net, x)
        return _fuse_cpu(net, x) if not gpu else net
    net.hybridize()
    _settle(net(x))
    low = convert_low_precision(net, dtype, ctx)
    if not gpu:
        low.hybridize()
        _settle(low(x))
        low = _fuse_cpu(low, x)
    return _hybridized(_AsFloat32(low), x)
