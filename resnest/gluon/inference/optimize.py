"""The fastest form of a model for inference: :func:`optimize`, one contract for three engines,
and ``backend='auto'`` (the default) to pick one of them from measured facts (:mod:`.auto`).

==============  ===========================  ===============================================
backend         dtypes                       module
==============  ===========================  ===============================================
``mxnet``       float32, bfloat16, int8;     :mod:`.mxnet` (oneDNN fusion, MXNet int8 and
                float16 on a GPU             AMP)
``onnxruntime`` float32, int8                :mod:`.onnxruntime` (our ONNX export; int8 by
                                             static QDQ quantization, :mod:`.quantize`)
``openvino``    float32, bfloat16, int8      :mod:`.openvino` (the same ONNX and QDQ files)
==============  ===========================  ===============================================

Whatever the backend, the result takes a float32 NCHW batch (NDArray or numpy) of any batch
size and returns float32 logits as an NDArray, so :func:`resnest.gluon.evaluate.evaluate` and
:func:`~.predict.predict` run it unchanged. onnxruntime and OpenVINO come with
``pip install resnest[deploy]``.
"""
import mxnet as mx

from ..utils.errors import UserError
from .auto import choose_engine
from .backends import AUTO, BACKENDS, CALIB_MODES, DTYPES
from .calibration import calibration_arrays, calibration_batches, spread_batches
from .mxnet import INT8_EXCLUDE, bfloat16_supported
from .quantize import ONNX_INT8_EXCLUDE

__all__ = ["AUTO", "BACKENDS", "CALIB_MODES", "DTYPES", "INT8_EXCLUDE", "ONNX_INT8_EXCLUDE",
           "choose_engine", "default_exclude", "optimize", "bfloat16_supported",
           "calibration_batches", "calibration_arrays", "spread_batches"]



def default_exclude(backend):
    """The layers ``backend``'s int8 keeps in float32 by default (node-name substrings), chosen
    by measured sensitivity: see :data:`INT8_EXCLUDE` and :data:`ONNX_INT8_EXCLUDE`."""
    return INT8_EXCLUDE if backend == "mxnet" else ONNX_INT8_EXCLUDE


def _check(backend, dtype, ctx):
    if backend not in BACKENDS:
        raise UserError(f"backend must be one of {', '.join((AUTO,) + tuple(BACKENDS))}, not "
                        f"{backend!r}.")
    if dtype not in BACKENDS[backend]:
        if dtype in DTYPES:
            raise UserError(f"the {backend} backend does not run {dtype}; it runs "
                            f"{', '.join(BACKENDS[backend])}.")
        raise UserError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}.")
    if backend != "mxnet" and ctx.device_type != "cpu":
        raise UserError(f"the {backend} backend runs on the CPU here; use backend='mxnet' "
                        "on a GPU.")


def optimize(net, dtype="float32", backend=AUTO, ctx=None, calib_data=None, input_size=224,
             batch_size=16, calib_mode=None, exclude=None, num_calib_batches=None,
             threads=None, workdir=None, any_size=False):
    """The fastest inference form of an initialised ``net`` for ``dtype`` with ``backend``.

    Parameters
    ----------
    net : HybridBlock
        An initialised model (weights loaded). The mxnet backend optimises it in place.
    dtype : {'float32', 'bfloat16', 'int8', 'float16'}
        See the table above for what each backend runs.
    backend : {'auto', 'mxnet', 'onnxruntime', 'openvino'}
        'auto' (default): the fastest installed engine for ``dtype`` on this CPU and
        ``batch_size`` by the measured facts of :mod:`.auto` (MXNet on a GPU).
    ctx : mx.Context
        Default CPU. The onnxruntime and OpenVINO backends are CPU only.
    calib_data : iterable, optional
        int8: real images to calibrate on, NDArray or numpy batches or ``(data, label, ...)``
        tuples (e.g. :func:`~.calibration.spread_batches` of a val loader), preprocessed as
        for inference at ``input_size``.
    input_size, batch_size : int
        Shape of the example batch the graph is built and tuned for. Every batch size runs;
        the ONNX backends take only ``input_size`` x ``input_size`` images unless
        ``any_size``.
    calib_mode : str, optional
        int8 calibration. mxnet: 'entropy' (default), 'naive' (min/max) or 'none'; onnxruntime
        and OpenVINO: 'naive' (min/max, default), 'entropy' or 'percentile'.
    exclude : sequence of str, optional
        int8: substrings of node names kept in float32; default :func:`default_exclude`.
    num_calib_batches : int, optional
        int8: use at most this many calibration batches.
    threads : int, optional
        onnxruntime/OpenVINO threads (default: the process's cores,
        :func:`~resnest.gluon.utils.threads.cpu_threads`); MXNet reads ``OMP_NUM_THREADS``.
    workdir : str, optional
        onnxruntime/OpenVINO: keep the exported ``model.onnx`` (and ``model.int8.onnx``) here
        instead of a temporary folder.
    any_size : bool
        Images of any height and width (a segmentation model scoring whole images): the ONNX
        backends export with free height and width (int8 calibration images may then be of
        any size); MXNet runs any size anyway, re-planning its graph for each new shape.

    Returns
    -------
    callable
        Takes float32 ``(N, 3, H, W)``, returns float32 logits as an NDArray: a hybridized
        block (mxnet) or an :class:`~.engine.EngineModel`. Its ``chosen_backend`` is the
        engine that runs and ``backend_reason`` why (the sentence of 'auto', or "asked for"):
        the scripts print ``engine: {chosen_backend} ({backend_reason})``.

    Raises
    ------
    UserError
        An unknown backend or dtype, a dtype the backend or this CPU cannot run, a backend
        that is not installed, int8 without calibration images, or 'auto' finding no engine
        whose bfloat16 is fast here.
    """
    ctx = ctx or mx.cpu()
    if backend == AUTO:
        choice = choose_engine(dtype, batch_size, device=ctx.device_type)
        backend, reason = choice.backend, choice.reason
    else:
        reason = "asked for"
    _check(backend, dtype, ctx)
    fast = _build(net, dtype, backend, ctx, calib_data, input_size, batch_size, calib_mode,
                  exclude, num_calib_batches, threads, workdir, any_size)
    fast.chosen_backend, fast.backend_reason = backend, reason
    return fast


def _build(net, dtype, backend, ctx, calib_data, input_size, batch_size, calib_mode, exclude,
           num_calib_batches, threads, workdir, any_size=False):
    exclude = default_exclude(backend) if exclude is None else tuple(exclude)
    if backend == "mxnet":
        from .mxnet import optimize_mxnet
        return optimize_mxnet(net, dtype, ctx, calib_data, input_size, batch_size,
                              calib_mode or "entropy", exclude, num_calib_batches)
    if backend == "onnxruntime":
        from .onnxruntime import optimize_onnxruntime as build
    else:
        from .openvino import optimize_openvino as build
    return build(net, dtype, calib_data, input_size, batch_size, calib_mode or "naive", exclude,
                 num_calib_batches, threads, workdir, any_size)
