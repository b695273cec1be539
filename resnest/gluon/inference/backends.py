"""The vocabulary of inference, typed once and importable without MXNet (scripts build their
command lines before MXNet starts its threads): the engines and the dtypes each runs, and the
int8 calibration modes the scripts offer (each engine takes its own too, see ``optimize``)."""

__all__ = ["AUTO", "BACKENDS", "DTYPES", "CALIB_MODES"]

# The default engine: the fastest installed one for the dtype and this CPU, from measured
# facts (resnest.gluon.inference.auto).
AUTO = "auto"

BACKENDS = {"mxnet": ("float32", "bfloat16", "int8", "float16"),
            "onnxruntime": ("float32", "int8"),
            "openvino": ("float32", "bfloat16", "int8")}
DTYPES = BACKENDS["mxnet"]
CALIB_MODES = ("entropy", "naive")
