"""The OpenVINO backend of :func:`~resnest.gluon.inference.optimize`: our ONNX export compiled by
OpenVINO's CPU plugin in float32, bfloat16 (``INFERENCE_PRECISION_HINT``, on CPUs with
avx512_bf16 or AMX) or int8.

int8 is the onnxruntime QDQ model (:mod:`.quantize`, the same calibration and exclusions) read
by OpenVINO, which runs the quantized layers with its own int8 kernels. OpenVINO's quantizer,
nncf, is not used: every nncf >= 2.15 needs numpy >= 1.24 (MXNet 1.9 needs numpy < 1.24), and
nncf 2.14 cannot read OpenVINO 2026 models.

A model is compiled for one static batch size (the fastest form); other batch sizes are
compiled on first use and kept. A model exported for any image size (``any_size``) is
compiled once with free batch, height and width. Compilation uses ``threads`` inference
threads (default: the cores this process owns), one stream and the latency hint.

OpenVINO is imported through :func:`import_openvino` only, which keeps its usage telemetry
off: without a consent file the package sends an event at import, from a thread pool, in a
``multiprocessing.Process``, i.e. a ``fork()`` from a background thread. In a process running
MXNet that fork runs MXNet's fork handlers (the engine stopped and started again) beside the
main thread's work, and an operation pushed in that moment is dropped, so the next wait never
returns: ``verify.py`` and ``predict.py`` hung for good in the demo test, twice in 27 runs on
the AMX Xeon (the stacks: MXNet's ``WaitForAll`` in the export, every engine worker idle).
"""
import os
import sys

from ..utils.errors import UserError
from .engine import EngineModel, require
from .export import tuple_output
from .quantize import ONNX_INT8_EXCLUDE, engine_onnx

__all__ = ["import_openvino", "bfloat16_supported", "runtime_precisions", "optimize_openvino"]


def import_openvino():
    """The ``openvino`` module, imported with its telemetry declined for this process (see the
    module doc; the user's own consent file is neither read nor written). The telemetry
    package's one switch that needs no file is its CI check (``CI=true`` declines, read when
    the converter's telemetry starts, at import), so ``CI`` is set for the import only."""
    if sys.modules.get("openvino") is not None:           # None: marked as not importable
        return sys.modules["openvino"]
    saved = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        return require("openvino", "openvino")
    finally:
        if saved is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = saved


def bfloat16_supported():
    """Whether OpenVINO's CPU plugin reports bf16 support (avx512_bf16 or AMX)."""
    ov = import_openvino()
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class _Compiled:
    """One OpenVINO model compiled per batch size on demand; it returns a list of outputs for
    a model with several outputs or one exported from a tuple (``as_list``)."""

    def __init__(self, core, model, config, input_size, as_list=False, any_size=False):
        self.core, self.model, self.config, self.size = core, model, config, input_size
        self.as_list = as_list or len(model.outputs) > 1
        self.any_size = any_size
        self.requests = {}

    def request(self, batch):
        key = "any" if self.any_size else batch
        if key not in self.requests:
            model = self.model.clone()
            if not self.any_size:
                model.reshape([batch, 3, self.size, self.size])
            compiled = self.core.compile_model(model, "CPU", self.config)
            self.requests[key] = compiled.create_infer_request()
        return self.requests[key]

    def __call__(self, x):
        result = self.request(x.shape[0]).infer({0: x})
        if self.as_list:
            return [result[i].copy() for i in range(len(self.model.outputs))]
        return result[0].copy()


def runtime_precisions(fast, batch=None):
    """``{layer name: precision}`` (``'u8'``/``'i8'`` for int8 kernels, ``'f32'``, ``'bf16'``)
    of the convolutions and fully-connected layers as OpenVINO actually runs them, for a model
    from ``optimize(..., backend='openvino')``, compiled for ``batch`` (default: the first)."""
    compiled = fast._run
    request = compiled.request(batch or next(iter(compiled.requests)))
    out = {}
    for op in request.get_compiled_model().get_runtime_model().get_ops():
        info = op.get_rt_info()
        if _text(info["layerType"]) in ("Convolution", "FullyConnected"):
            name = op.get_friendly_name().split("/")[0]
            out[name] = _text(info["runtimePrecision"]).lower()
    return out


def _text(value):
    return value.value if hasattr(value, "value") else value.astype(str)


def optimize_openvino(net, dtype, calib_data, input_size, batch_size, calib_mode="naive",
                      exclude=ONNX_INT8_EXCLUDE, num_calib_batches=None, threads=None,
                      workdir=None, any_size=False):
    """:func:`~resnest.gluon.inference.optimize` for ``backend='openvino'``."""
    ov = import_openvino()
    if dtype == "bfloat16" and not bfloat16_supported():
        raise UserError("OpenVINO cannot run bfloat16 on this CPU (it needs avx512_bf16 or "
                        "AMX); use float32 or int8.")
    core = ov.Core()
    with engine_onnx(net, dtype, calib_data, input_size, batch_size, calib_mode, exclude,
                     num_calib_batches, threads, workdir, any_size) as (path, info):
        model = core.read_model(path)
        as_list = tuple_output(path)
    config = {"INFERENCE_NUM_THREADS": info["threads"], "NUM_STREAMS": 1,
              "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "bf16" if dtype == "bfloat16" else "f32"}
    compiled = _Compiled(core, model, config, input_size, as_list, any_size)
    compiled.request(batch_size)
    return EngineModel(compiled, "openvino", dtype, input_size, info, any_size)
