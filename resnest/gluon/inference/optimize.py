"""The fastest form of a model for inference on the current device: :func:`optimize`.

=========  ======  ==============================================================================
dtype      device  what it does
=========  ======  ==============================================================================
float32    CPU     hybridize with static memory, then MXNet's oneDNN (MKLDNN) subgraph backend:
                   conv + BN folded into the conv weights, + ReLU / + residual add fused
float32    GPU     hybridize with static memory
bfloat16   CPU     MXNet AMP (``amp.convert_hybrid_block``) to bfloat16, then the oneDNN backend;
                   needs a CPU with AVX-512 (bf16 instructions for full speed)
int8       CPU     MXNet quantization (``quantize_net``) calibrated on real images (entropy or
                   naive), with the layers where int8 hurts kept in float32 (:data:`INT8_EXCLUDE`)
float16    GPU     MXNet AMP to float16
=========  ======  ==============================================================================

Every returned block takes a float32 batch and returns float32 logits.
"""
import mxnet as mx
from mxnet.gluon import nn

from ..utils.errors import UserError

__all__ = ["DTYPES", "INT8_EXCLUDE", "INT8_EXCLUDE_FAST", "optimize", "bfloat16_supported",
           "calibration_batches", "spread_batches"]

DTYPES = ("float32", "bfloat16", "int8", "float16")

# Layers kept in float32 by int8 quantization, as substrings of the graph's node names:
# the stem's first conv (3 input channels: little work, large error from the raw image), the
# classifier (its error goes straight into the logits) and the split-attention convolutions
# (the 3x3 conv and the attention fc1/fc2 feed a softmax that amplifies int8 error). Measured on
# resnest_tiny trained on the digits: top-1 agreement with float32 is 94% with only the stem and
# classifier excluded (INT8_EXCLUDE_FAST), 97% also excluding the 3x3 split conv, 99.4% with all
# of the split-attention in float32 (INT8_EXCLUDE).
INT8_EXCLUDE_FAST = ("conv1conv0_fwd", "dense0_fwd")
INT8_EXCLUDE = INT8_EXCLUDE_FAST + ("splitattentionconv0_",)

_BF16_OK = None


def _is_gpu(ctx):
    return ctx.device_type == "gpu"


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
        return F.amp_cast(self.inner(x), dtype="float32")


def calibration_batches(data, max_batches=None):
    """Re-iterable list of ``[batch]`` for MXNet's quantizer from an iterable of NDArrays or of
    ``(data, label, ...)`` tuples (e.g. :func:`resnest.gluon.data.eval_loader`)."""
    batches = []
    for item in data:
        batch = item[0] if isinstance(item, (list, tuple)) else item
        if not isinstance(batch, mx.nd.NDArray):
            batch = mx.nd.array(batch)
        if batches and batch.shape != batches[0][0].shape:
            break                                      # the quantizer binds one input shape
        batches.append([batch.as_in_context(mx.cpu())])
        if max_batches and len(batches) >= max_batches:
            break
    if not batches:
        raise UserError("int8 calibration needs at least one batch of real images "
                        "(pass calib_data, e.g. an eval_loader over a few hundred images).")
    return batches


def spread_batches(loader, count):
    """``count`` batches of ``loader`` spread evenly over it (record files are often in class
    order, so the first batches would be one class), skipping the batches in between without
    decoding them; for int8 calibration."""
    step = max(1, len(loader) // max(1, count))
    batches = []
    for start in range(0, min(len(loader), step * count), step):
        loader.set_epoch(0, start_batch=start)
        batches.append(next(iter(loader)))
    loader.set_epoch(0, start_batch=0)
    return batches


def _hybridized(net, x):
    net.hybridize(static_alloc=True, static_shape=True)
    net(x).wait_to_read()
    return net


def _fuse_cpu(net, x):
    # oneDNN subgraph backend: folds BN into conv weights and fuses ReLU and residual adds.
    net.optimize_for(x, backend="MKLDNN", static_alloc=True, static_shape=True)
    net(x).wait_to_read()
    return net


def _quantize(net, x, calib_data, calib_mode, exclude, num_calib_batches,
              granularity="channel-wise"):
    from mxnet.contrib.quantization import quantize_net_v2
    if calib_mode != "none" and calib_data is None:
        raise UserError("int8 needs calib_data (real images) for calib_mode="
                        f"{calib_mode!r}; pass a loader or use calib_mode='none'.")
    batches = calibration_batches(calib_data, num_calib_batches) if calib_data is not None \
        else None
    net.hybridize()
    net(x).wait_to_read()
    shapes = [mx.io.DataDesc("data", batches[0][0].shape if batches else x.shape)]
    # Channel-wise weight scales: one scale per output channel instead of per tensor.
    qnet = quantize_net_v2(net, quantized_dtype="auto", quantize_granularity=granularity,
                           exclude_layers_match=list(exclude), calib_data=batches,
                           data_shapes=shapes, calib_mode=calib_mode, ctx=mx.cpu())
    return _hybridized(qnet, x)


def optimize(net, dtype="float32", ctx=None, calib_data=None, input_size=224, batch_size=16,
             calib_mode="entropy", exclude=INT8_EXCLUDE, num_calib_batches=None):
    """The fastest inference form of an initialised ``net`` for ``dtype`` on ``ctx``.

    Parameters
    ----------
    net : HybridBlock
        An initialised model (weights loaded). For float32 it is optimised in place.
    dtype : {'float32', 'bfloat16', 'int8', 'float16'}
    ctx : mx.Context
        Default CPU. bfloat16 and int8 are CPU paths, float16 is a GPU path.
    calib_data : iterable, optional
        Real images for int8 calibration: NDArray batches or ``(data, label, ...)`` tuples.
    input_size, batch_size : int
        Shape of the example batch the graph is built and tuned for (oneDNN picks kernels
        per shape; other shapes still work but are re-tuned on first use).
    calib_mode : {'entropy', 'naive', 'none'}
        int8 calibration: KL-divergence thresholds, min/max, or none (ranges computed at run time).
    exclude : sequence of str
        int8 only: substrings of node names to keep in float32 (default :data:`INT8_EXCLUDE`).
    num_calib_batches : int, optional
        int8 only: use at most this many calibration batches.

    Returns
    -------
    HybridBlock
        Hybridized; takes float32 ``(N, 3, H, W)`` and returns float32 logits.

    Raises
    ------
    UserError
        For a dtype the device cannot run (bfloat16 without AVX-512, float16 on a CPU, int8 on a
        GPU) or int8 without calibration images.
    """
    ctx = ctx or mx.cpu()
    if dtype not in DTYPES:
        raise UserError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}.")
    gpu = _is_gpu(ctx)
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
    from mxnet.contrib import amp
    net.hybridize()
    net(x).wait_to_read()
    low = amp.convert_hybrid_block(net, target_dtype=dtype, ctx=ctx)
    if not gpu:
        low.hybridize()
        low(x).wait_to_read()
        low = _fuse_cpu(low, x)
    return _hybridized(_AsFloat32(low), x)
