"""The onnxruntime backend of :func:`~resnest.gluon.inference.optimize`: our ONNX export run by
onnxruntime's CPU engine, in float32 or in static QDQ int8 (:mod:`.quantize`).

Sessions use every graph optimisation, ``threads`` intra-op threads (default: the cores this
process owns, :func:`resnest.gluon.utils.threads.cpu_threads`), one inter-op thread, and no
spin-waiting unless :func:`~resnest.gluon.utils.threads.spin_wait` allows it: spinning threads
keep a core busy after every operator, which on a shared machine starves the other processes
and the next model (docs/inference.md, "On a shared machine").
"""
import numpy as np

from ..utils.threads import cpu_threads, spin_wait
from .engine import EngineModel, require
from .export import TUPLE_OUTPUT_KEY
from .quantize import ONNX_INT8_EXCLUDE, engine_onnx

__all__ = ["session", "onnx_runner", "optimize_onnxruntime"]


def session(path, threads=None, spinning=None):
    """An onnxruntime CPU ``InferenceSession`` of ``path`` with the settings above."""
    ort = require("onnxruntime", "onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or cpu_threads())
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    allow = spin_wait() if spinning is None else spinning
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow else "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def onnx_runner(path, threads=None):
    """A function ``numpy NCHW float32 -> numpy outputs`` running ``path`` in a :func:`session`
    (``threads`` intra-op threads, default ``OMP_NUM_THREADS`` or all cores). A model that
    returned a tuple or list in MXNet (a backbone's feature maps, a segmentation model's
    ``(main, aux)`` or ``(main,)``) gives the list of its outputs, any other its one array."""
    sess = session(path, threads)
    name = sess.get_inputs()[0].name
    meta = sess.get_modelmeta().custom_metadata_map
    single = len(sess.get_outputs()) == 1 and meta.get(TUPLE_OUTPUT_KEY) != "1"

    def run(images):
        outputs = sess.run(None, {name: np.ascontiguousarray(images, dtype=np.float32)})
        return outputs[0] if single else outputs
    return run


def optimize_onnxruntime(net, dtype, calib_data, input_size, batch_size, calib_mode="naive",
                         exclude=ONNX_INT8_EXCLUDE, num_calib_batches=None, threads=None,
                         workdir=None, any_size=False):
    """:func:`~resnest.gluon.inference.optimize` for ``backend='onnxruntime'``."""
    require("onnxruntime", "onnxruntime")
    with engine_onnx(net, dtype, calib_data, input_size, batch_size, calib_mode, exclude,
                     num_calib_batches, threads, workdir, any_size) as (path, info):
        run = onnx_runner(path, threads)
    return EngineModel(run, "onnxruntime", dtype, input_size, info, any_size)
