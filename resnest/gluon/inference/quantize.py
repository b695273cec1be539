"""Static int8 quantization of an exported ONNX model (QDQ), shared by the onnxruntime and the
OpenVINO backends.

onnxruntime's ``quantize_static`` inserts QuantizeLinear/DequantizeLinear pairs around every
Conv and Gemm except the excluded ones: per-channel int8 weights, uint8 activations with
ranges from min/max calibration on real images. onnxruntime runs the QDQ model with its int8
kernels; OpenVINO reads the same file and runs it in int8 too (its own quantizer, nncf, cannot
be used here: nncf >= 2.15 needs numpy >= 1.24, and nncf 2.14 cannot read OpenVINO 2026 models).
"""
import contextlib
import os

import numpy as np

from ..utils.errors import UserError
from ..utils.threads import cpu_threads
from .calibration import calibration_arrays
from .engine import require
from .export import exported_onnx

__all__ = ["ONNX_INT8_EXCLUDE", "quantize_onnx", "int8_layers", "check_calibration",
           "engine_onnx"]

# What the QDQ int8 keeps in float32, as substrings of ONNX node names (each exported node is
# named after its output, which carries MXNet's layer name): the stem's first conv (3 input
# channels: little work, and the raw image is the input hardest to fit in 8 bits) and the
# classifier (its error goes straight into the logits). Measured (tools/int8_study.py, held-out
# real photos; docs/inference.md, "int8 you can trust"): 99.66% top-1 agreement with float32 in
# onnxruntime, 99.54% in OpenVINO; with every layer int8, 99.41% and 99.50%; keeping the
# split-attention block float32 as MXNet must buys 0.05-0.2 points and halves the speed-up.
ONNX_INT8_EXCLUDE = ("conv1conv0_fwd", "dense0_fwd")

_METHODS = {"naive": "MinMax", "minmax": "MinMax", "entropy": "Entropy",
            "percentile": "Percentile"}


# Images per calibration call. onnxruntime's calibration runs a copy of the model that outputs
# every intermediate tensor; with 16 images of ResNeSt-200 at 320 in one call, benchmark.py grew
# past 24 GB and was OOM-killed. Min/max ranges are the same whatever the chunking.
CALIB_CHUNK = 2


class _Reader:
    """onnxruntime's CalibrationDataReader over a list of numpy batches, served in chunks of
    :data:`CALIB_CHUNK` images; ``set_range`` lets the quantizer calibrate one chunk at a time
    (``CalibStridedMinMax``)."""

    def __init__(self, name, arrays):
        self.name = name
        self.arrays = [a[i:i + CALIB_CHUNK] for a in arrays for i in range(0, len(a), CALIB_CHUNK)]
        self.index, self.end = 0, len(arrays)

    def __len__(self):
        return len(self.arrays)

    def set_range(self, start_index, end_index):
        self.index, self.end = start_index, min(end_index, len(self.arrays))

    def get_next(self):
        if self.index >= self.end:
            return None
        self.index += 1
        return {self.name: self.arrays[self.index - 1]}

    def rewind(self):
        self.index, self.end = 0, len(self.arrays)


def quantize_onnx(fp32_path, out_path, calib_arrays, exclude=ONNX_INT8_EXCLUDE,
                  calib_mode="naive"):
    """Write the QDQ int8 form of ``fp32_path`` to ``out_path``; returns the excluded node names.

    Parameters
    ----------
    fp32_path, out_path : str
        The exported float32 model and where the int8 one goes.
    calib_arrays : list of numpy.ndarray
        Real images, float32 NCHW batches, preprocessed as for inference.
    exclude : sequence of str
        Substrings of node names to keep in float32.
    calib_mode : {'naive', 'minmax', 'entropy', 'percentile'}
        Calibration method ('naive' is min/max, the measured default).
    """
    onnx = require("onnx", "onnxruntime int8")
    quantization = require("onnxruntime.quantization", "onnxruntime int8")
    from onnxruntime.quantization.shape_inference import quant_pre_process
    require("onnxruntime", "onnxruntime int8").set_default_logger_severity(3)
    prepared = os.path.splitext(out_path)[0] + ".prepared.onnx"
    # BN folded into the convs, shapes inferred. Symbolic shape inference cannot follow the
    # Shape/ScatterND chain MXNet exports for swapaxes, so only ONNX's own inference runs.
    quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
    names = [node.name for node in onnx.load(prepared).graph.node]
    excluded = [n for n in names if any(s in n for s in exclude)]
    method = getattr(quantization.CalibrationMethod, _METHODS[calib_mode])
    # Min/max merged after every chunk, instead of keeping every intermediate tensor of every
    # calibration image in memory (gigabytes for ResNeSt-50 at 224). (CalibMaxIntermediateOutputs
    # would be the obvious option, but onnxruntime 1.31 drops the data it collected with it.)
    extra = {"CalibStridedMinMax": 1} if method == quantization.CalibrationMethod.MinMax else {}
    input_name = onnx.load(prepared).graph.input[0].name
    quantization.quantize_static(
        prepared, out_path, _Reader(input_name, calib_arrays),
        quant_format=quantization.QuantFormat.QDQ, per_channel=True,
        activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
        nodes_to_exclude=excluded, calibrate_method=method, extra_options=extra)
    os.remove(prepared)
    return excluded


def int8_layers(path):
    """``{node name: True if int8}`` for every Conv, Gemm and MatMul of an ONNX model: int8
    when its weight comes through a DequantizeLinear (a QDQ model's quantized weight)."""
    onnx = require("onnx", "onnxruntime int8")
    graph = onnx.load(path).graph
    producer = {out: node for node in graph.node for out in node.output}
    layers = {}
    for node in graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            source = producer.get(node.input[1])
            layers[node.name] = source is not None and source.op_type == "DequantizeLinear"
    return layers


def check_calibration(arrays, input_size, any_size=False):
    """Refuse calibration batches of another image size than the model's (of any size with
    ``any_size``, RGB all the same), in one sentence."""
    shape = tuple(np.shape(arrays[0]))
    if any_size and len(shape) == 4 and shape[1] == 3:
        return
    if len(shape) != 4 or shape[1:] != (3, input_size, input_size):
        raise UserError(f"calibration batches are {shape} but the model is built for "
                        f"(N, 3, {input_size}, {input_size}); preprocess them at input_size.")


@contextlib.contextmanager
def engine_onnx(net, dtype, calib_data, input_size, batch_size, calib_mode, exclude,
                num_calib_batches=None, threads=None, workdir=None, any_size=False):
    """What an ONNX engine loads: ``net`` exported (any height and width with ``any_size``;
    for int8 quantized) in ``workdir`` or a temporary folder; yields ``(path, info)`` with the
    build facts (threads, excluded nodes, which layers are int8, the file when kept)."""
    calib = None
    if dtype == "int8":
        calib = calibration_arrays(calib_data if calib_data is not None else [],
                                   num_calib_batches)
        check_calibration(calib, input_size, any_size)
    info = {"threads": int(threads or cpu_threads())}
    with exported_onnx(net, input_size, batch_size, workdir, dynamic_size=any_size) as \
            (folder, path):
        if dtype == "int8":
            int8_path = os.path.join(folder, "model.int8.onnx")
            info["fp32_excluded"] = quantize_onnx(path, int8_path, calib, exclude, calib_mode)
            info["int8_layers"] = int8_layers(int8_path)
            path = int8_path
        if workdir:
            info["onnx"] = path
        yield path, info
